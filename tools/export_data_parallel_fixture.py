#!/usr/bin/python3
"""Generate the model of the data-parallel fine-tuning tests (tests/cli/test_cli_mpi.cpp).

    /usr/bin/python3 tools/export_data_parallel_fixture.py

Needs python3-torch (1.13). Writes:

  tests/data/model/models/no_batchnorm.pt  a scripted model without BatchNorm (so that a batch
      split over processes computes the same gradient as the whole batch): children conv1
      (Conv2d 3->4, 3x3, padding 1) and conv2 (Conv2d 4->4, 3x3, padding 1), each followed by a
      tanh; forward(x [N,3,S,S]) -> (features [N, 8],), the global mean and max of conv2's 4
      channels. Random weights from torch.manual_seed(0). By tlkit's definition of blocks it has
      2: conv1, conv2.
"""
import os
from typing import Tuple

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")


class NoBatchNorm(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x) -> Tuple[torch.Tensor]:
        h = torch.tanh(self.conv2(torch.tanh(self.conv1(x))))
        return (torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1),)


def main():
    torch.manual_seed(0)
    m = NoBatchNorm().eval()
    torch.jit.script(m).save(os.path.join(ROOT, "model", "models", "no_batchnorm.pt"))


if __name__ == "__main__":
    main()
