#!/usr/bin/env python3
"""Fixtures of tests/model/test_probe.cpp (tlkit probe, docs/probe.md), by PyTorch alone.

Writes to tests/data/probe/:
  * probe_gap.pt: a scripted model with the kit cifar10_resnet* layout: normalisation buffers, conv1,
    bn1, ReLU, `blocks` (Sequential: two shape-compatible residual blocks 4->4, then one 4->6 block
    with a 1x1 projection shortcut), global average pool -> features, `linear` (6->3) -> logits.
    Weights and BatchNorm statistics are random (torch seed 0), the model in eval mode.
  * probe_list.pt: the same weights, forward -> (features, List[Tensor] of the maps after conv1,
    after bn1 + ReLU and after each block): a model that returns its per-layer features.
  * input.npy: float32 [5, 3, 8, 8] in [0, 1] (torch seed 1).
  * layers.npz-like files layer_<i>.npy: the per-layer features of the input computed here by
    forward hooks on the children (independently of tlkit's graph splitting): layer 0 the input's
    channel means, then after conv1 (its output), after bn1 (+ the ReLU forward applies before
    `blocks`: the value `blocks` receives), after each block; each 4-D map averaged over H, W.
  * features.npy: the model's own features output for the input.
Run: /usr/bin/python3 tools/export_probe_fixtures.py
"""
import os

from typing import List, Tuple

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "probe")


class Block(torch.nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = torch.nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(cout)
        self.shortcut = torch.nn.Conv2d(cin, cout, 1) if cin != cout else torch.nn.Identity()

    def forward(self, x):
        return torch.relu(self.shortcut(x) + self.bn(self.conv(x)))


class ProbeGap(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1))
        self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1, bias=True)
        self.bn1 = torch.nn.BatchNorm2d(4)
        self.blocks = torch.nn.Sequential(Block(4, 4), Block(4, 4), Block(4, 6))
        self.linear = torch.nn.Linear(6, 3)

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.blocks(x)
        feat = torch.mean(x, [2, 3])
        return feat, self.linear(feat)


class ProbeList(torch.nn.Module):
    """ProbeGap's weights; forward also returns the per-layer maps as a List[Tensor]."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        m = self.m
        x = (x - m.mean) / m.std
        c = m.conv1(x)
        h = torch.relu(m.bn1(c))
        layers = [c, h]
        for b in m.blocks:
            h = b(h)
            layers.append(h)
        return torch.mean(h, [2, 3]), layers


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    m = ProbeGap()
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    m.eval()
    torch.jit.script(m).save(os.path.join(OUT, "probe_gap.pt"))
    torch.jit.script(ProbeList(m)).save(os.path.join(OUT, "probe_list.pt"))

    torch.manual_seed(1)
    x = torch.rand(5, 3, 8, 8)
    np.save(os.path.join(OUT, "input.npy"), x.numpy().astype(np.float32))
    seen = []
    hooks = [m.conv1.register_forward_hook(lambda mod, i, o: seen.append(o))]
    # The value `blocks` receives (bn1's output after forward's ReLU) is the input of blocks[0].
    hooks.append(m.blocks.register_forward_pre_hook(lambda mod, i: seen.append(i[0])))
    for b in m.blocks:
        hooks.append(b.register_forward_hook(lambda mod, i, o: seen.append(o)))
    with torch.no_grad():
        feat, _ = m(x)
    for h in hooks:
        h.remove()
    layers = [x.mean(dim=(2, 3))] + [t.mean(dim=(2, 3)) for t in seen]
    assert len(layers) == 6
    for i, t in enumerate(layers):
        np.save(os.path.join(OUT, f"layer_{i}.npy"), t.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "features.npy"), feat.numpy().astype(np.float32))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
