#!/usr/bin/python3
"""Generate the fixtures of tlkit's model tests (tests/data/model/).

    /usr/bin/python3 tools/export_test_models.py [--out tests/data/model] [--kit ../shared/kit]
    /usr/bin/python3 tools/export_test_models.py --only-resize-ties [--out tests/data/model]
    /usr/bin/python3 tools/export_test_models.py --only-user-models [--out tests/data/model]

Needs python3-torch (>= 1.13), numpy and PIL (Debian's /usr/bin/python3). Writes:

  models/tuple.pt          forward(x) -> (features [N, 8], logits [N, 3]): conv + BatchNorm + ReLU,
                           global mean, linear head; works for any input size
  models/features_only.pt  forward(x) -> features [N, 8, 1, 1] (one tensor, flattened by tlkit)
  models/throws.pt         forward(x) raises an exception
  models/wrong_shape.pt    forward(x) -> (features [N + 1, 8], logits): the batch size is wrong
  models/relu6_pool.pt     forward(x) -> (features [N, 8], logits [N, 3]): conv, ReLU6, avg_pool2d;
                           torch 1.13's optimize_for_inference computes it wrong (tlkit falls back)
  models/classifier_only.pt  forward(x) -> logits [N, 3] of the head (a plain classifier)
  models/fixed_flatten.pt  forward(x) -> (features, logits) whose widths depend on the input size
  models/state_dict.pt     torch.save(state_dict): not TorchScript
  models/records_size.pt   the tuple model with tlkit.json {"input_size": 32, "feature_dim": 8,
                           "logits_dim": 3}; bad_record.pt with a malformed tlkit.json
                           (--only-user-models writes just these)
  images/special/          gray.png (L), alpha.png (RGBA), palette.png (P), truncated.jpg (the first
                           half of a JPEG), all derived from the committed images under images/train
  reference/               what the C++ tests compare against, computed here by the PIL/torch
                           pipeline of tools/extract_features_py.py:
    images.txt             the images of the preprocessing references, one path per row
    preprocess_S.npy       uint8 [M, 3, S, S]: PIL convert('RGB'), shorter side to S (BILINEAR),
                           centre crop (the float input is this / 255), for S in 32, 45, 64
    tuple_features.npy     float32: models/tuple.pt on images/train at S = 32 (ImageFolder order)
    tuple_logits.npy
    tuple_labels.npy
    relu6_pool_features.npy  models/relu6_pool.pt (not optimised) on the same input
    resize_ties/*.png      64 x 65, 65 x 64 and 64 x 67 RGB crops of the skirt photo, whose longer
                           side at S = 32 scales to 32.5, 32.5 and 33.5: exact ties, which Python's
                           round() breaks to even (32, 32, 34), unlike rounding half away from
                           zero (33, 33, 34) or truncation (32, 32, 33)
    resize_ties.txt        those files, one a row
    preprocess_ties_32.npy uint8 [3, 3, 32, 32]: the preprocessing of those images at S = 32, as
                           preprocess_S.npy (--only-resize-ties writes just these, leaving the
                           other fixtures as they are)
    kit_*                  only when the kit is present: the real models of ../shared/kit on a few
                           of its images and on a synthetic input (see kit_references below)

The models are TorchScript archives saved by this torch version; the tests load them with LibTorch.
Rerunning rewrites everything; the committed outputs came from torch 1.13 (Debian 12).
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torch.nn import functional as F
from typing import Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from extract_features_py import list_samples, load_image  # noqa: E402  (the reference pipeline)

SIZES = (32, 45, 64)


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 3)

    def features(self, x: Tensor) -> Tensor:
        return torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3))


class TupleModel(Tiny):
    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        f = self.features(x)
        return f, self.fc(f)


class FeaturesOnly(Tiny):
    def forward(self, x: Tensor) -> Tensor:
        return self.features(x)[:, :, None, None]


class Throws(Tiny):
    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        if x.size(0) >= 0:
            raise RuntimeError("tlkit test model: forward always fails")
        return x, x


class Relu6Pool(nn.Module):
    """conv -> ReLU6 -> average pooling: LibTorch 1.13's optimize_for_inference computes it wrong
    (the MobileNet pattern), so tlkit must notice and fall back to the frozen model."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        f = F.avg_pool2d(F.hardtanh(self.conv(x), 0.0, 6.0), 4, 2).mean(dim=(2, 3))
        return f, self.fc(f)


class ClassifierOnly(Tiny):
    """A plain classifier, like torch.jit.script(resnet18): one tensor, its head's logits."""

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.features(x))


class FixedFlatten(Tiny):
    """Flattens a pooled map instead of pooling globally, as traced graphs made for one input size
    do: the feature width depends on the input size (32 at S = 32, 72 at S = 48)."""

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        f = torch.flatten(F.avg_pool2d(torch.relu(self.bn(self.conv(x))), 8), 1)
        return f, f[:, :3] * 2.0


class WrongShape(Tiny):
    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        f = self.features(x)
        return torch.cat([f, f[:1]]), self.fc(f)


def reference_tuple():
    """models/tuple.pt's weights (seed 0)."""
    torch.manual_seed(0)
    ref = TupleModel()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so that freezing folds something
        ref.bn.running_mean.uniform_(-0.2, 0.2)
        ref.bn.running_var.uniform_(0.5, 2.0)
        ref.bn.weight.uniform_(0.5, 1.5)
        ref.bn.bias.uniform_(-0.1, 0.1)
    return ref.eval()


def make_models(out):
    ref = reference_tuple()
    state = ref.state_dict()
    os.makedirs(os.path.join(out, "models"), exist_ok=True)
    models = {}
    for name, cls in (("tuple", TupleModel), ("features_only", FeaturesOnly), ("throws", Throws),
                      ("wrong_shape", WrongShape)):
        m = cls()
        m.load_state_dict(state)
        m.eval()
        sm = torch.jit.script(m)
        sm.save(os.path.join(out, "models", name + ".pt"))
        models[name] = sm
    torch.manual_seed(1)
    m = Relu6Pool().eval()
    sm = torch.jit.script(m)
    sm.save(os.path.join(out, "models", "relu6_pool.pt"))
    models["relu6_pool"] = sm
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        bad = (torch.jit.optimize_for_inference(torch.jit.freeze(sm))(x)[0] - sm(x)[0]).abs().max()
    print("relu6_pool: optimize_for_inference differs by %.3g from the model as loaded" % bad)
    return models


def make_user_models(out):
    """What users bring: a plain classifier, a torch.save state_dict, a model recording its input
    size and widths in tlkit.json (and one whose tlkit.json is malformed), a fixed-size flatten;
    all with models/tuple.pt's weights."""
    ref = reference_tuple()
    models = os.path.join(out, "models")
    os.makedirs(models, exist_ok=True)
    for name, cls in (("classifier_only", ClassifierOnly), ("fixed_flatten", FixedFlatten)):
        m = cls()
        m.load_state_dict(ref.state_dict())
        torch.jit.script(m.eval()).save(os.path.join(models, name + ".pt"))
    torch.save(ref.state_dict(), os.path.join(models, "state_dict.pt"))
    record = json.dumps({"input_size": 32, "feature_dim": 8, "logits_dim": 3})
    torch.jit.script(ref).save(os.path.join(models, "records_size.pt"),
                               _extra_files={"tlkit.json": record})
    torch.jit.script(ref).save(os.path.join(models, "bad_record.pt"),
                               _extra_files={"tlkit.json": '{"input_size": "large"}'})


def make_special_images(out):
    train = os.path.join(out, "images", "train")
    special = os.path.join(out, "images", "special")
    os.makedirs(special, exist_ok=True)
    skirt = os.path.join(train, "skirt", sorted(os.listdir(os.path.join(train, "skirt")))[0])
    longsleeve = os.path.join(train, "longsleeve",
                              sorted(os.listdir(os.path.join(train, "longsleeve")))[0])
    shorts = os.path.join(train, "shorts", sorted(os.listdir(os.path.join(train, "shorts")))[0])
    with Image.open(skirt) as im:
        im.convert("L").save(os.path.join(special, "gray.png"), optimize=True)
    with Image.open(longsleeve) as im:
        rgba = im.convert("RGBA")
        w, h = rgba.size
        alpha = Image.linear_gradient("L").resize((w, h))  # 0 (transparent) .. 255 (opaque)
        rgba.putalpha(alpha)
        rgba.save(os.path.join(special, "alpha.png"), optimize=True)
    with Image.open(shorts) as im:
        im.convert("RGB").quantize(colors=16).save(os.path.join(special, "palette.png"),
                                                   optimize=True)
    with open(skirt, "rb") as f:
        data = f.read()
    with open(os.path.join(special, "truncated.jpg"), "wb") as f:
        f.write(data[: len(data) // 2])
    try:  # PIL refuses it too
        with Image.open(os.path.join(special, "truncated.jpg")) as im:
            im.load()
        raise SystemExit("truncated.jpg decoded without error in PIL")
    except OSError:
        pass


def save(out, name, array):
    np.save(os.path.join(out, "reference", name), array)


def preprocess_uint8(path, size):
    x = load_image(path, size)  # float32 CHW in [0, 1], exactly k / 255
    u = np.rint(x * 255.0).astype(np.uint8)
    assert np.array_equal(u.astype(np.float32) / 255.0, x)
    return u


def make_resize_ties(out):
    """Images whose longer side scales to an exact .5 at S = 32, and their preprocessing."""
    train = os.path.join(out, "images", "train")
    skirt = os.path.join(train, "skirt", sorted(os.listdir(os.path.join(train, "skirt")))[0])
    ties = os.path.join(out, "reference", "resize_ties")
    os.makedirs(ties, exist_ok=True)
    size = 32
    names = []
    with Image.open(skirt) as im:
        rgb = im.convert("RGB")
        for w, h in ((64, 65), (65, 64), (64, 67)):
            name = "%dx%d.png" % (w, h)
            assert (max(w, h) * size / min(w, h)) % 1 == 0.5, name  # an exact tie
            rgb.crop((20, 40, 20 + w, 40 + h)).save(os.path.join(ties, name), optimize=True)
            names.append(name)
    with open(os.path.join(out, "reference", "resize_ties.txt"), "w") as fh:
        for n in names:
            fh.write(n + "\n")
    save(out, "preprocess_ties_%d.npy" % size,
         np.stack([preprocess_uint8(os.path.join(ties, n), size) for n in names]))


def synthetic_input(n, size):
    """The deterministic input of the kit model checks; the C++ test builds the same tensor."""
    i = np.arange(n * 3 * size * size, dtype=np.int64)
    x = (((i * 7919) % 1009) / 1008.0).astype(np.float32)
    return torch.from_numpy(x.reshape(n, 3, size, size))


def kit_references(out, kit):
    zoo = {m["name"]: m for m in json.load(open(os.path.join(kit, "models", "zoo.json")))["models"]}
    info = {}
    # 1. cifar10_resnet20 end to end on the first two test images of each CIFAR-10 class.
    cifar = os.path.join(kit, "data", "cifar10-test")
    files = []
    for cls in sorted(os.listdir(cifar)):
        files += [os.path.join(cls, n) for n in sorted(os.listdir(os.path.join(cifar, cls)))[:2]]
    labels = {cls: i for i, cls in enumerate(sorted(os.listdir(cifar)))}
    model = torch.jit.load(os.path.join(kit, zoo["cifar10_resnet20"]["file"]), map_location="cpu")
    model.eval()
    x = torch.from_numpy(np.stack([load_image(os.path.join(cifar, p), 32) for p in files]))
    with torch.no_grad():
        f, lo = model(x)
    save(out, "kit_resnet20_features.npy", f.float().numpy())
    save(out, "kit_resnet20_logits.npy", lo.float().numpy())
    with open(os.path.join(out, "reference", "kit_resnet20_files.txt"), "w") as fh:
        for p in files:
            fh.write("%s\t%d\n" % (p, labels[p.split("/")[0]]))
    # 2. cifar10_resnet20 on the committed preprocessing reference at S = 32 (the same tensor in
    # the C++ test).
    u8 = np.load(os.path.join(out, "reference", "preprocess_32.npy"))
    x = torch.from_numpy(u8.astype(np.float32) / 255.0)
    with torch.no_grad():
        f, lo = model(x)
    save(out, "kit_resnet20_on_preprocess_32_features.npy", f.float().numpy())
    # 3. Traced ImageNet models on the synthetic input.
    for name in ("imagenet_mobilenet_v1_025_128", "darknet_tiny_imagenet"):
        s = int(zoo[name]["input_size"])
        m = torch.jit.load(os.path.join(kit, zoo[name]["file"]), map_location="cpu")
        m.eval()
        with torch.no_grad():
            f, lo = m(synthetic_input(2, s))
        save(out, "kit_%s_synthetic_features.npy" % name, f.reshape(2, -1).float().numpy())
        save(out, "kit_%s_synthetic_logits.npy" % name, lo.reshape(2, -1).float().numpy())
        info[name] = {"input_size": s}
    return info


def main():
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "tests", "data", "model"))
    ap.add_argument("--kit", default=os.path.join(here, "..", "shared", "kit"))
    ap.add_argument("--only-user-models", action="store_true",
                    help="write only the models of make_user_models")
    ap.add_argument("--only-resize-ties", action="store_true",
                    help="write only reference/resize_ties* and preprocess_ties_32.npy")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.only_resize_ties:
        make_resize_ties(args.out)
        return
    if args.only_user_models:
        make_user_models(args.out)
        return

    models = make_models(args.out)
    make_user_models(args.out)
    make_special_images(args.out)
    os.makedirs(os.path.join(args.out, "reference"), exist_ok=True)

    # Preprocessing references: the ImageFolder listing of images/train, then the special PNGs.
    _, files, labels = list_samples(os.path.join(args.out, "images"), "train", 0, 0)
    images = files + [os.path.join("special", n) for n in ("gray.png", "alpha.png", "palette.png")]
    with open(os.path.join(args.out, "reference", "images.txt"), "w") as fh:
        for p in images:
            fh.write(p + "\n")
    for s in SIZES:
        save(args.out, "preprocess_%d.npy" % s,
             np.stack([preprocess_uint8(os.path.join(args.out, "images", p), s) for p in images]))

    make_resize_ties(args.out)

    # The tuple model end to end on images/train at S = 32.
    x = torch.from_numpy(np.stack([load_image(os.path.join(args.out, "images", p), 32)
                                   for p in files]))
    with torch.no_grad():
        f, lo = models["tuple"](x)
    save(args.out, "tuple_features.npy", f.numpy())
    save(args.out, "tuple_logits.npy", lo.numpy())
    save(args.out, "tuple_labels.npy", labels)
    with torch.no_grad():
        f, lo = models["relu6_pool"](x)
    save(args.out, "relu6_pool_features.npy", f.numpy())

    meta = {"torch": torch.__version__, "numpy": np.__version__, "pil": Image.__version__,
            "sizes": list(SIZES)}
    if os.path.isdir(args.kit):
        meta["kit"] = kit_references(args.out, args.kit)
    else:
        print("kit not found at %s: kit references not written" % args.kit, file=sys.stderr)
    with open(os.path.join(args.out, "reference", "provenance.json"), "w") as fh:
        json.dump(meta, fh, indent=1)
        fh.write("\n")
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
