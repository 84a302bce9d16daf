#!/usr/bin/python3
"""Extract penultimate-layer features (and logits) of TorchScript image models.

Reference Python extractor for tlkit examples. Needs torch (>= 1.13), numpy, PIL.

Dataset layout: DATA/<split>/<class>/*.jpg (ImageFolder). Classes are sorted
alphabetically and numbered 0..C-1. For each class, the file names are sorted,
permuted with numpy.random.default_rng(seed).permutation, the first K are
taken and then sorted again (so the sample is deterministic and independent of
the file system's listing order). One generator is created per run and used
for the classes in sorted order.

Preprocessing per image: PIL open, convert('RGB'), resize the shorter side to
S (PIL BILINEAR), centre crop SxS, float32 in [0, 1], CHW. Each model's own
normalisation lives inside the TorchScript module; forward(x) -> (features, logits).
Logits are written raw (no softmax).

Outputs (OUT/):
  labels.npy            int64 [N]
  files.txt             "<relative path>\t<label>" per row, in row order
  <model>/features.npy  float32 [N, D], C order
  <model>/logits.npy    float32 [N, Cs]  (skipped when Cs > --max-logits-dim)
  <model>/meta.json     model name, file sha256, input size, N, D, seconds, ...
"""
import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_samples(data, split, per_class, seed):
    root = os.path.join(data, split)
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not classes:
        raise SystemExit("no class folders under %s" % root)
    rng = np.random.default_rng(seed)
    files, labels = [], []
    for label, cls in enumerate(classes):
        names = sorted(n for n in os.listdir(os.path.join(root, cls))
                       if n.lower().endswith(IMAGE_EXTS))
        if per_class > 0:
            perm = rng.permutation(len(names))
            chosen = sorted(names[i] for i in perm[:per_class])
            if len(chosen) < per_class:
                print("warning: class %s has only %d images" % (cls, len(chosen)), file=sys.stderr)
        else:
            chosen = names
        for n in chosen:
            files.append(os.path.join(split, cls, n))
            labels.append(label)
    return classes, files, np.asarray(labels, dtype=np.int64)


def load_image(path, size):
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        if w <= h:
            nw, nh = size, max(1, int(round(h * size / w)))
        else:
            nw, nh = max(1, int(round(w * size / h))), size
        im = im.resize((nw, nh), Image.BILINEAR)
        left = (nw - size) // 2
        top = (nh - size) // 2
        im = im.crop((left, top, left + size, top + size))
        arr = np.asarray(im, dtype=np.float32) / 255.0  # HWC
    return np.ascontiguousarray(arr.transpose(2, 0, 1))  # CHW


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zoo", required=True, help="zoo.json (model files are relative to its parent's parent)")
    ap.add_argument("--models", required=True, help="comma-separated model names from zoo.json")
    ap.add_argument("--data", required=True, help="dataset root holding <split>/<class>/*.jpg")
    ap.add_argument("--split", default="train")
    ap.add_argument("--per-class", type=int, default=0, help="images per class (0 = all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--max-logits-dim", type=int, default=0,
                    help="write logits.npy only when the model has at most this many classes (0 = always)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    with open(args.zoo) as f:
        zoo = {m["name"]: m for m in json.load(f)["models"]}
    # zoo.json lives in KIT/models/ and its "file" entries are relative to KIT.
    kit_root = os.path.dirname(os.path.dirname(os.path.abspath(args.zoo)))
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    for n in names:
        if n not in zoo:
            raise SystemExit("unknown model %s" % n)
        if zoo[n].get("kind") != "image":
            raise SystemExit("model %s is not an image model" % n)

    classes, files, labels = list_samples(args.data, args.split, args.per_class, args.seed)
    os.makedirs(args.out, exist_ok=True)
    np.save(os.path.join(args.out, "labels.npy"), labels)
    with open(os.path.join(args.out, "files.txt"), "w") as f:
        for p, l in zip(files, labels):
            f.write("%s\t%d\n" % (p, l))
    print("%d images, %d classes: %s" % (len(files), len(classes), ",".join(classes)), flush=True)

    failed = []
    for name in names:
        entry = zoo[name]
        size = int(entry["input_size"])
        mfile = os.path.join(kit_root, entry["file"])
        t0 = time.time()
        try:
            model = torch.jit.load(mfile, map_location="cpu")
            model.eval()
            feats, logits = [], []
            with torch.no_grad():
                for s in range(0, len(files), args.batch):
                    batch = np.stack([load_image(os.path.join(args.data, p), size)
                                      for p in files[s:s + args.batch]])
                    fe, lo = model(torch.from_numpy(batch))
                    feats.append(fe.reshape(fe.shape[0], -1).float().numpy())
                    logits.append(lo.reshape(lo.shape[0], -1).float().numpy())
            F = np.ascontiguousarray(np.concatenate(feats), dtype=np.float32)
            L = np.ascontiguousarray(np.concatenate(logits), dtype=np.float32)
        except Exception as e:  # keep going with the other models
            print("FAILED %s: %s" % (name, e), file=sys.stderr, flush=True)
            failed.append(name)
            continue
        secs = time.time() - t0
        if not np.isfinite(F).all() or not np.isfinite(L).all():
            print("warning: %s produced non-finite values" % name, file=sys.stderr)
        mdir = os.path.join(args.out, name)
        os.makedirs(mdir, exist_ok=True)
        np.save(os.path.join(mdir, "features.npy"), F)
        wrote_logits = args.max_logits_dim <= 0 or L.shape[1] <= args.max_logits_dim
        if wrote_logits:
            np.save(os.path.join(mdir, "logits.npy"), L)
        elif os.path.exists(os.path.join(mdir, "logits.npy")):
            os.remove(os.path.join(mdir, "logits.npy"))
        meta = {
            "model": name,
            "file": entry["file"],
            "sha256": sha256_of(mfile),
            "input_size": size,
            "N": int(F.shape[0]),
            "D": int(F.shape[1]),
            "logits_dim": int(L.shape[1]),
            "logits_written": bool(wrote_logits),
            "seconds": round(secs, 2),
            "threads": args.threads,
            "data": os.path.basename(os.path.normpath(args.data)),
            "split": args.split,
            "per_class": args.per_class,
            "seed": args.seed,
            "num_classes": len(classes),
            "classes": classes,
            "torch": torch.__version__,
        }
        with open(os.path.join(mdir, "meta.json"), "w") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
        print("%-32s N=%d D=%d logits=%d%s  %.1fs" % (
            name, F.shape[0], F.shape[1], L.shape[1], "" if wrote_logits else " (not written)", secs),
            flush=True)
    if failed:
        print("failed models: %s" % ",".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
