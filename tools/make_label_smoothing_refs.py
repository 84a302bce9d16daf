#!/usr/bin/python3
"""Reference values of the fine-tuning loss with label smoothing (tests/data/model/reference/).

    /usr/bin/python3 tools/make_label_smoothing_refs.py [--out tests/data/model]

Needs python3-torch (1.13) and numpy (Debian's /usr/bin/python3). Computes, independently of
tlkit, what PyTorch's nn.CrossEntropyLoss(label_smoothing=eps) (mean over the rows) gives on a
fixed batch of logits, for tests/model/test_finetune_schedule.cpp. Writes:

  reference/label_smoothing_logits.npy  float32 [6, 4]: N(0, 2^2) from NumPy seed 5, with row 4
                                        shifted by +40 (large logits: a stable log-sum-exp) and
                                        row 5 all equal (a uniform prediction)
  reference/label_smoothing_labels.npy  int64 [6]: the labels, every class at least once
  reference/label_smoothing_eps.npy     float64 [5]: 0, 0.05, 0.1, 0.3, 0.9
  reference/label_smoothing_loss.npy    float64 [5]: the loss for each eps, computed by PyTorch
                                        on the float32 logits (float32 arithmetic, as the
                                        training loop)
  reference/label_smoothing_loss_f64.npy  float64 [5]: the same in float64 arithmetic
"""
import argparse
import os

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                                  "model"))
    args = ap.parse_args()
    ref = os.path.join(args.out, "reference")
    rng = np.random.default_rng(5)
    logits = rng.normal(0.0, 2.0, size=(6, 4)).astype(np.float32)
    logits[4] += 40.0
    logits[5] = 1.5
    labels = np.array([0, 1, 2, 3, 2, 1], dtype=np.int64)
    eps = np.array([0.0, 0.05, 0.1, 0.3, 0.9], dtype=np.float64)
    loss = []
    loss64 = []
    for e in eps:
        ce = torch.nn.CrossEntropyLoss(label_smoothing=float(e))
        loss.append(float(ce(torch.from_numpy(logits), torch.from_numpy(labels))))
        loss64.append(float(ce(torch.from_numpy(logits).double(), torch.from_numpy(labels))))
    np.save(os.path.join(ref, "label_smoothing_logits.npy"), logits)
    np.save(os.path.join(ref, "label_smoothing_labels.npy"), labels)
    np.save(os.path.join(ref, "label_smoothing_eps.npy"), eps)
    np.save(os.path.join(ref, "label_smoothing_loss.npy"), np.array(loss, dtype=np.float64))
    np.save(os.path.join(ref, "label_smoothing_loss_f64.npy"), np.array(loss64, dtype=np.float64))
    print("torch", torch.__version__, "loss", loss)


if __name__ == "__main__":
    main()
