#!/usr/bin/python3
"""Generate the text fixtures of tlkit's model tests (tests/data/model/text/).

    /usr/bin/python3 tools/export_text_test_model.py [--out tests/data/model] [--kit ../shared/kit]

Needs python3-torch (>= 1.13) and numpy (Debian's /usr/bin/python3). Writes:

  models/text_stats.pt   forward(texts: List[str]) -> (features [N, 5], extra [N, 2]): per text
                         its byte length, word count (split on single spaces), count of 'e',
                         count of '?', then tanh of a fixed linear map of those four; extra is
                         the first two columns again. A scripted module, a few KB.
  text/trec12.txt        the first 12 lines of the kit's TREC.train.all ('<label> <question>',
                         TREC question classification, Li and Roth 2002)
  text/trec12.csv        the same samples as a text,label CSV with class names instead of numbers
                         (the label numbers mapped to "c<number>", so that sorted names keep the
                         numeric order) and a leading extra column
  reference/text_stats_features.npy  float32 [12, 5]: the module run by PyTorch on the texts
                                     (bytes decoded as UTF-8; all 12 are ASCII)
  reference/text_stats_labels.npy    int64 [12]
"""
import argparse
import csv
import os
from typing import List, Tuple

import numpy as np
import torch
from torch import Tensor, nn


class TextStats(nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.w = nn.Parameter(torch.randn(4, 1, generator=g) * 0.1)

    def forward(self, texts: List[str]) -> Tuple[Tensor, Tensor]:
        rows: List[List[float]] = []
        for t in texts:
            e = 0
            q = 0
            for ch in t:
                if ch == "e":
                    e += 1
                if ch == "?":
                    q += 1
            rows.append([float(len(t)), float(len(t.split(" "))), float(e), float(q)])
        x = torch.tensor(rows, dtype=torch.float32)
        return torch.cat([x, torch.tanh(x @ self.w)], dim=1), x[:, :2]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "model"))
    ap.add_argument("--kit", default=os.path.join(here, "..", "..", "shared", "kit"))
    a = ap.parse_args()
    os.makedirs(os.path.join(a.out, "text"), exist_ok=True)
    with open(os.path.join(a.kit, "data", "text-classification", "TREC.train.all"), "rb") as f:
        lines = f.read().split(b"\n")[:12]
    with open(os.path.join(a.out, "text", "trec12.txt"), "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    labels, texts = [], []
    for line in lines:
        label, text = line.decode("ascii").split(" ", 1)
        labels.append(int(label))
        texts.append(text.strip())
    with open(os.path.join(a.out, "text", "trec12.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "text"])
        for i, (label, text) in enumerate(zip(labels, texts)):
            w.writerow([i, "c%d" % label, text])
    m = torch.jit.script(TextStats().eval())
    m.save(os.path.join(a.out, "models", "text_stats.pt"))
    with torch.no_grad():
        feats, _ = m(texts)
    np.save(os.path.join(a.out, "reference", "text_stats_features.npy"), feats.numpy())
    np.save(os.path.join(a.out, "reference", "text_stats_labels.npy"),
            np.array(labels, dtype=np.int64))
    print(feats)


if __name__ == "__main__":
    main()
