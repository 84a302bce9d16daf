#!/usr/bin/env python3
"""PyTorch's own extraction throughput on a GPU: the anchors tlkit's --device cuda is compared with.

    python3 tools/device_anchors.py [--archs resnet18,mobilenet_v2,resnet50] [--batch 256]
        [--size 224] [--rounds 20] [--export-dir DIR]

For each torchvision architecture (random weights: nothing is downloaded) in eval mode, channels-last,
under torch.inference_mode, at fp32 and under torch.autocast("cuda", torch.bfloat16), prints one JSON
line per (model, precision, input) with images/s over --rounds batches after 3 warm-up batches:

  input "gpu":    a [B, 3, S, S] batch already on the GPU (the model alone);
  input "pinned": the batch copied each round from pinned host memory (non_blocking), the outputs
                  copied back as float32, as tlkit's TorchScriptModel::forward does.

Timing: torch.cuda.synchronize() before and after the timed rounds, time.perf_counter. cuDNN's
benchmark mode is left off (PyTorch's and LibTorch's default). With --export-dir, each model is also
written in the kit's contract by tools/export_torchvision.py (forward(x in [0, 1]) -> (features,
logits), normalisation inside) as DIR/<arch>.pt for tlkit_forward_bench.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def timed(fn, rounds):
    import torch
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(rounds):
        fn()
    torch.cuda.synchronize()
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--archs", default="resnet18,mobilenet_v2,resnet50")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--export-dir", default="")
    args = ap.parse_args()

    import torch
    import torchvision

    if not torch.cuda.is_available():
        sys.exit("device_anchors.py: torch %s sees no CUDA device" % torch.__version__)
    dev = torch.device("cuda")
    cl = torch.channels_last
    for arch in args.archs.split(","):
        if args.export_dir:
            os.makedirs(args.export_dir, exist_ok=True)
            out = os.path.join(args.export_dir, arch + ".pt")
            subprocess.run([sys.executable, os.path.join(os.path.dirname(__file__),
                                                         "export_torchvision.py"),
                            "--arch", arch, "--out", out, "--input-size", str(args.size)],
                           check=True)
        torch.manual_seed(0)
        model = getattr(torchvision.models, arch)(weights=None).eval().to(dev, memory_format=cl)
        x_gpu = torch.rand(args.batch, 3, args.size, args.size, device=dev).contiguous(
            memory_format=cl)
        x_host = torch.rand(args.batch, 3, args.size, args.size).pin_memory()
        for precision in ("fp32", "bf16"):
            def on_gpu():
                with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16,
                                                            enabled=precision == "bf16"):
                    model(x_gpu)

            def from_pinned():
                with torch.inference_mode(), torch.autocast("cuda", torch.bfloat16,
                                                            enabled=precision == "bf16"):
                    x = x_host.to(dev, non_blocking=True).contiguous(memory_format=cl)
                    model(x).float().cpu()

            for name, fn in (("gpu", on_gpu), ("pinned", from_pinned)):
                s = timed(fn, args.rounds)
                print(json.dumps({
                    "tool": "pytorch", "model": arch, "size": args.size, "batch": args.batch,
                    "precision": precision, "input": name, "channels_last": True,
                    "rounds": args.rounds, "seconds": round(s, 4),
                    "images_per_second": round(args.batch * args.rounds / s, 1),
                    "torch": torch.__version__, "gpu": torch.cuda.get_device_name(0)}),
                    flush=True)


if __name__ == "__main__":
    main()
