#!/usr/bin/python3
"""Generate the text fine-tuning fixtures of tlkit's model tests (tests/data/model/).

    /usr/bin/python3 tools/export_text_finetune_fixtures.py [--out tests/data/model]

Needs python3-torch (1.13) and numpy (Debian's /usr/bin/python3). Uses text/trec12.txt (made by
tools/export_text_test_model.py). Writes:

  models/text_bag.pt   a scripted, trainable text model: forward(texts: List[str]) ->
                       (features [N, 4], extra [N, 3]). Each character c of a text is the id
                       ord(c) % 64 into `emb` (Embedding 64 x 6); the text's vector is the mean of
                       its characters' embeddings; features = tanh(proj(vector)) (`proj`: Linear
                       6 -> 4); extra = out(features) (`out`: Linear 4 -> 3, an "original head" off
                       the feature path, as the kit char-RNNs' `out`). Blocks (finetune.h): emb,
                       proj. Weights: N(0, 0.5^2) from torch.Generator seed 11.
  models/text_buffer.pt  forward(texts: List[str]) -> (features [N, 4], features): the mean of
                       rows ord(c) % 64 of a 64 x 4 table held as a BUFFER (N(0, 1), seed 12): a
                       model with no parameter, which top:K and full must refuse (linear works).
  reference/text_bag_sgd_{top1,full}_{emb.weight,proj.weight,proj.bias}.npy
                       float32: the backbone parameters after ONE SGD step of `tlkit finetune`
                       on trec12.txt, computed here by PyTorch independently of tlkit:
                       --data trec12.txt --split-val trec12.txt --split-test trec12.txt
                       --mode top:1|full --epochs 1 --batch 12 --lr 0.1 --head-lr-mult 10
                       --momentum 0.9 --weight-decay 5e-4 --seed 3 (cosine schedule: epoch 1 has
                       lr 0.1). The new head (Linear 4 -> 6 classes, labels 0..5) is drawn as
                       tlkit draws it: torch.manual_seed(mix(seed, 6)) then nn.Linear's default
                       initialisation (LibTorch's torch::nn::Linear draws the same numbers);
                       mix() is finetune.cpp's splitmix64 combination. All 12 questions form the
                       one batch, so the step does not depend on the data order.
"""
import argparse
import os
from typing import List, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TextBag(nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = nn.Embedding(64, 6)
        self.proj = nn.Linear(6, 4)
        self.out = nn.Linear(4, 3)
        g = torch.Generator().manual_seed(11)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, texts: List[str]) -> Tuple[Tensor, Tensor]:
        rows: List[Tensor] = []
        for t in texts:
            ids: List[int] = []
            for ch in t:
                ids.append(ord(ch) % 64)
            if len(ids) == 0:
                ids.append(0)
            rows.append(self.emb(torch.tensor(ids, dtype=torch.long)).mean(0))
        f = torch.tanh(self.proj(torch.stack(rows)))
        return f, self.out(f)


class TextBuffer(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("table", torch.randn(64, 4, generator=torch.Generator().manual_seed(12)))

    def forward(self, texts: List[str]) -> Tuple[Tensor, Tensor]:
        rows: List[Tensor] = []
        for t in texts:
            ids: List[int] = [0]
            for ch in t:
                ids.append(ord(ch) % 64)
            rows.append(self.table[torch.tensor(ids, dtype=torch.long)].mean(0))
        f = torch.stack(rows)
        return f, f


M64 = (1 << 64) - 1


def mix(seed, purpose, epoch=0):
    """finetune.cpp's mix(): splitmix64 finaliser of a combination (uint64 arithmetic)."""
    z = (seed * 0x9E3779B97F4A7C15 + purpose * 0xBF58476D1CE4E5B9 + epoch + 1) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


K_HEAD = 6  # finetune.cpp's Purpose::kHead


def one_sgd_step(path, texts, labels, trainable, seed=3, lr=0.1, head_lr_mult=10.0,
                 momentum=0.9, weight_decay=5e-4):
    m = torch.jit.load(path)
    m.eval()
    params = dict(m.named_parameters())
    for p in params.values():
        p.requires_grad_(False)
    body = []
    for name in trainable:
        params[name].requires_grad_(True)
        body.append(params[name])
    classes = max(2, max(labels) + 1)
    torch.manual_seed(mix(seed, K_HEAD))
    head = nn.Linear(4, classes)
    opt = torch.optim.SGD([{"params": body, "lr": lr},
                           {"params": list(head.parameters()), "lr": lr * head_lr_mult}],
                          lr=lr, momentum=momentum, weight_decay=weight_decay)
    opt.zero_grad()
    feats, _ = m(texts)
    loss = F.cross_entropy(head(feats), torch.tensor(labels, dtype=torch.long))
    loss.backward()
    opt.step()
    return {k: v.detach().numpy().astype(np.float32) for k, v in m.named_parameters()}, float(loss)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "model"))
    a = ap.parse_args()
    torch.set_num_threads(1)
    path = os.path.join(a.out, "models", "text_bag.pt")
    torch.jit.script(TextBag().eval()).save(path)
    torch.jit.script(TextBuffer().eval()).save(os.path.join(a.out, "models", "text_buffer.pt"))
    labels, texts = [], []
    with open(os.path.join(a.out, "text", "trec12.txt"), "rb") as f:
        for line in f.read().decode("ascii").split("\n"):
            if line.strip():
                label, text = line.strip().split(" ", 1)
                labels.append(int(label))
                texts.append(text.strip())
    before = {k: v.detach().numpy() for k, v in torch.jit.load(path).named_parameters()}
    ref = os.path.join(a.out, "reference")
    for mode, trainable in (("top1", ["proj.weight", "proj.bias"]),
                            ("full", ["emb.weight", "proj.weight", "proj.bias"])):
        after, loss = one_sgd_step(path, texts, labels, trainable)
        for name in ("emb.weight", "proj.weight", "proj.bias"):
            np.save(os.path.join(ref, "text_bag_sgd_%s_%s.npy" % (mode, name)), after[name])
        moved = {k: float(np.abs(after[k] - before[k]).max()) for k in after}
        print(mode, "loss %.6f" % loss, "max change", moved)


if __name__ == "__main__":
    main()
