#!/usr/bin/python3
"""Does channels-last memory format speed up the kit's image models on this CPU?

    /usr/bin/python3 tools/bench_channels_last.py [--kit ../shared/kit] [--batch 32] [--repeat 5]

For each kit image model: forward on a random [B, 3, S, S] batch, frozen (torch.jit.freeze, as
tlkit extract's default), with the input and the module in contiguous (NCHW) and in channels-last
(NHWC: input.contiguous(memory_format=torch.channels_last), and the frozen module's weights
converted the same way) formats; best of --repeat timings each, after a warm-up. Prints a
Markdown table (ms per batch and the ratio) for docs/extract.md. Same LibTorch version as the
C++ build (python3-torch 1.13 on Debian 12).
"""
import argparse
import json
import os
import time

import torch


def best_time(fn, repeat):
    fn()  # warm-up (and JIT profiling)
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--kit", default=os.path.join(here, "..", "..", "shared", "kit"))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(os.cpu_count())
    zoo = json.load(open(os.path.join(a.kit, "models", "zoo.json")))["models"]
    print("batch %d, %d threads, torch %s\n" % (a.batch, torch.get_num_threads(), torch.__version__))
    print("| model | S | NCHW ms/batch | channels-last ms/batch | NCHW / channels-last |")
    print("|---|---|---|---|---|")
    g = torch.Generator().manual_seed(0)
    for m in zoo:
        if m["kind"] != "image":
            continue
        s = m["input_size"]
        x = torch.rand(a.batch, 3, s, s, generator=g)
        with torch.no_grad():
            frozen = torch.jit.freeze(torch.jit.load(os.path.join(a.kit, m["file"])).eval())
            t_nchw = best_time(lambda: frozen(x), a.repeat)
            xl = x.contiguous(memory_format=torch.channels_last)
            cl = torch.jit.freeze(torch.jit.load(os.path.join(a.kit, m["file"])).eval()
                                  .to(memory_format=torch.channels_last))
            t_cl = best_time(lambda: cl(xl), a.repeat)
        print("| %s | %d | %.1f | %.1f | %.2f |" % (m["name"], s, 1e3 * t_nchw, 1e3 * t_cl,
                                                    t_nchw / t_cl))


if __name__ == "__main__":
    main()
