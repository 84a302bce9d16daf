#!/usr/bin/python3
"""One fine-tuning epoch of `tlkit finetune --mode full` against the same training loop written in
PyTorch-Python (python3-torch), on the same kit model, images, batch, augmentation and threads.

tlkit:  `tlkit finetune --zoo zoo.json --model-name M --mode full` on the kit's clothing-small-160
        (--per-class K of train and validation), its metrics.json's per-epoch seconds (training
        and the validation pass).
Python: the same TorchScript file, a new nn.Linear head on its features, SGD (lr 0.01, head x10,
        momentum 0.9, weight decay 5e-4, cosine schedule), batch 32, random flip and a shift of up
        to S/8 pixels (tlkit's `--augment flip,crop`), images decoded once with PIL and the same
        preprocessing (tools/extract_features_py.py), then each epoch: training in train mode and
        a validation pass in eval mode, timed the same way.

Runs alternate (tlkit, Python, tlkit, Python, ...) so that a change in the machine's load falls on
both; prints the median epoch time of each and their ratio.

  tools/bench_finetune_py.py --models cifar10_resnet20,imagenet_mobilenet_v1_025_128 [--per-class 20]
                             [--epochs 2] [--repeats 2] [--threads 1]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)


def python_epochs(kit, entry, data, per_class, epochs, batch, threads, seed=0):
    import numpy as np
    import torch
    from extract_features_py import list_samples, load_image
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    s = int(entry["input_size"])
    classes, tr_files, tr_y = list_samples(data, "train", per_class, seed)
    _, va_files, va_y = list_samples(data, "validation", per_class, seed)
    xtr = np.stack([load_image(os.path.join(data, p), s) for p in tr_files])
    xva = torch.from_numpy(np.stack([load_image(os.path.join(data, p), s) for p in va_files]))
    ytr, yva = torch.from_numpy(np.asarray(tr_y)), torch.from_numpy(np.asarray(va_y))
    model = torch.jit.load(os.path.join(kit, entry["file"]), map_location="cpu")
    with torch.no_grad():
        d = model(xva[:2])[0].reshape(2, -1).shape[1]
    head = torch.nn.Linear(d, len(classes))
    lr = 0.01
    opt = torch.optim.SGD([{"params": model.parameters(), "lr": lr},
                           {"params": head.parameters(), "lr": lr * 10}],
                          lr=lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    rng = np.random.default_rng(seed)
    pad = max(1, s // 8)
    times = []
    for _ in range(epochs):
        t0 = time.time()
        model.train()
        head.train()
        order = rng.permutation(len(xtr))
        for b in range(0, len(order), batch):
            idx = order[b:b + batch]
            xb = xtr[idx].copy()
            for i in range(len(xb)):  # flip, then a shift of up to S/8 with zero fill
                if rng.integers(2):
                    xb[i] = xb[i][:, :, ::-1]
                dx, dy = rng.integers(-pad, pad + 1, size=2)
                xb[i] = np.roll(xb[i], (dy, dx), axis=(1, 2))
                if dy > 0: xb[i][:, :dy] = 0
                if dy < 0: xb[i][:, dy:] = 0
                if dx > 0: xb[i][:, :, :dx] = 0
                if dx < 0: xb[i][:, :, dx:] = 0
            feats = model(torch.from_numpy(xb))[0].reshape(len(idx), -1)
            loss = torch.nn.functional.cross_entropy(head(feats), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        model.eval()
        head.eval()
        with torch.no_grad():
            correct = 0
            for b in range(0, len(xva), batch):
                f = model(xva[b:b + batch])[0].reshape(min(batch, len(xva) - b), -1)
                correct += int((head(f).argmax(1) == yva[b:b + batch]).sum())
        times.append(time.time() - t0)
    return times


def tlkit_epochs(tlkit, kit, name, data, per_class, epochs, batch, threads, out):
    subprocess.run([tlkit, "finetune", "--zoo", os.path.join(kit, "models", "zoo.json"),
                    "--model-name", name, "--data", data, "--split-train", "train",
                    "--split-val", "validation", "--split-test", "test", "--per-class",
                    str(per_class), "--epochs", str(epochs), "--batch", str(batch), "--mode",
                    "full", "--threads", str(threads), "--out", out, "--quiet"], check=True)
    m = json.load(open(os.path.join(out, "metrics.json")))
    return [h["seconds"] for h in m["history"]]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kit", default=os.path.join(ROOT, "..", "shared", "kit"))
    ap.add_argument("--tlkit", default=os.path.join(ROOT, "build", "apps", "cli", "tlkit"))
    ap.add_argument("--models", default="cifar10_resnet20,imagenet_mobilenet_v1_025_128,"
                                        "doodlenet_quickdraw")
    ap.add_argument("--per-class", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    zoo = {m["name"]: m for m in json.load(open(os.path.join(a.kit, "models", "zoo.json")))["models"]}
    data = os.path.join(a.kit, "data", "clothing-small-160")
    print("clothing-small-160, %d per class of train and validation, --mode full, %d epochs, "
          "batch %d, %d thread(s), %d alternating runs each; load average %.1f at the start\n" % (
              a.per_class, a.epochs, a.batch, a.threads, a.repeats, os.getloadavg()[0]))
    print("| model | S | tlkit s/epoch | PyTorch-Python s/epoch | tlkit / Python time |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in [m for m in a.models.split(",") if m]:
            t, p = [], []
            for r in range(a.repeats):
                t += tlkit_epochs(a.tlkit, a.kit, name, data, a.per_class, a.epochs, a.batch,
                                  a.threads, os.path.join(tmp, "%s-%d" % (name, r)))
                p += python_epochs(a.kit, zoo[name], data, a.per_class, a.epochs, a.batch,
                                   a.threads)
            mt, mp = statistics.median(t), statistics.median(p)
            print("| %s | %d | %.2f | %.2f | %.2f |" % (name, zoo[name]["input_size"], mt, mp,
                                                        mt / mp), flush=True)
    print("\nload average %.1f at the end" % os.getloadavg()[0])


if __name__ == "__main__":
    main()
