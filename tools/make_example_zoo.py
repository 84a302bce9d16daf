#!/usr/bin/python3
"""Copy the README's example zoo and images from the kit (../shared/kit) into examples/.

    /usr/bin/python3 tools/make_example_zoo.py [--kit ../shared/kit] [--per-class 20]

Writes examples/zoo/ (three small real models of the kit and a zoo.json in the kit's format, with
their sources and licences) and examples/clothing-images/<class>/*.jpg: the first --per-class
photos of each class of the kit's clothing-small-160/train in sorted file-name order (CC0). Both
are byte copies; nothing is re-encoded.
"""
import argparse
import json
import os
import shutil

MODELS = ["cifar10_resnet20", "imagenet_mobilenet_v1_025_128", "doodlenet_quickdraw"]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.join(here, "..")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kit", default=os.path.join(root, "..", "shared", "kit"))
    ap.add_argument("--per-class", type=int, default=12)
    a = ap.parse_args()

    zoo = json.load(open(os.path.join(a.kit, "models", "zoo.json")))
    out_zoo = os.path.join(root, "examples", "zoo")
    os.makedirs(os.path.join(out_zoo, "models"), exist_ok=True)
    entries = []
    for m in zoo["models"]:
        if m["name"] not in MODELS:
            continue
        src = os.path.join(a.kit, m["file"])
        shutil.copyfile(src, os.path.join(out_zoo, "models", os.path.basename(src)))
        e = dict(m)
        e["file"] = "models/" + os.path.basename(src)
        entries.append(e)
    with open(os.path.join(out_zoo, "zoo.json"), "w") as f:
        json.dump({"models": entries}, f, indent=1)
        f.write("\n")

    src_root = os.path.join(a.kit, "data", "clothing-small-160", "train")
    out_img = os.path.join(root, "examples", "clothing-images")
    for cls in sorted(os.listdir(src_root)):
        files = sorted(f for f in os.listdir(os.path.join(src_root, cls)) if f.endswith(".jpg"))
        os.makedirs(os.path.join(out_img, cls), exist_ok=True)
        for f in files[: a.per_class]:
            shutil.copyfile(os.path.join(src_root, cls, f), os.path.join(out_img, cls, f))
    shutil.copyfile(os.path.join(a.kit, "data", "clothing-small-160", "LICENSE"),
                    os.path.join(out_img, "LICENSE-CC0"))


if __name__ == "__main__":
    main()
