#!/usr/bin/python3
"""Generate the fixtures of the fine-tuning tests (tests/data/model/, tests/data/linear_probe/).

    /usr/bin/python3 tools/export_finetune_fixtures.py

Needs python3-torch (1.13), numpy, PIL and sklearn (Debian 12's /usr/bin/python3). Writes:

  tests/data/model/models/trainable.pt  a scripted model shaped like the kit's cifar10_resnet*:
      children conv1 (Conv2d 3->4), bn1 (BatchNorm2d), blocks (Sequential of 2 Block: conv +
      BatchNorm + ReLU + residual), linear (Linear 8->3, the original classifier, off the feature
      path); forward(x [N,3,S,S]) -> (features [N, 8], logits [N, 3]); features are the global
      mean and max of the last block's 4 channels. Random weights from torch.manual_seed(0). By
      tlkit's definition of blocks it has 4: conv1, bn1, blocks.0, blocks.1.
  tests/data/model/toy/{train,test}/{blue,red}/NN.png  8 x 8 RGB images: blue ones are
      (40, 60, 200) + noise, red ones (200, 50, 40) + noise (uniform integers in [-30, 30]), a
      linearly separable toy dataset: train 12 per class, test 4 per class; numpy seed 0.
  tests/data/linear_probe/  an independent reference for tlkit's multinomial logistic regression:
      x_train.npy (float64 [90, 6]), y_train.npy (int64), x_test.npy ([30, 6]), y_test.npy: three
      Gaussian classes with overlapping means (numpy seed 1); for C in 0.01, 1 and 100:
      coef_C.npy ([3, 6]), intercept_C.npy ([1, 3]) and test_pred_C.npy of sklearn's
      LogisticRegression(multi_class="multinomial", solver="lbfgs", C=C, tol=1e-12,
      max_iter=100000), which minimises 0.5 ||W||^2 + C sum cross-entropy with a free intercept;
      provenance.json records the versions.
"""
import json
import os

import numpy as np
import sklearn
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data")


class Block(torch.nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = torch.nn.BatchNorm2d(c)

    def forward(self, x):
        return torch.relu(x + self.bn(self.conv(x)))


class Trainable(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(4)
        self.blocks = torch.nn.Sequential(Block(4), Block(4))
        self.linear = torch.nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.bn1(self.conv1(x)))
        h = self.blocks(h)
        f = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return f, self.linear(f)


def export_model():
    torch.manual_seed(0)
    m = Trainable().eval()
    path = os.path.join(ROOT, "model", "models", "trainable.pt")
    torch.jit.script(m).save(path)


def export_toy():
    rng = np.random.default_rng(0)
    base = {"blue": (40, 60, 200), "red": (200, 50, 40)}
    for split, count in (("train", 12), ("test", 4)):
        for cls, rgb in base.items():
            d = os.path.join(ROOT, "model", "toy", split, cls)
            os.makedirs(d, exist_ok=True)
            for i in range(count):
                noise = rng.integers(-30, 31, size=(8, 8, 3))
                img = np.clip(np.array(rgb)[None, None, :] + noise, 0, 255).astype(np.uint8)
                Image.fromarray(img, "RGB").save(os.path.join(d, "%02d.png" % i))


def export_linear_probe():
    rng = np.random.default_rng(1)
    means = rng.normal(0.0, 1.0, size=(3, 6))

    def sample(n_per):
        x = np.concatenate([means[c] + rng.normal(0.0, 1.5, size=(n_per, 6)) for c in range(3)])
        y = np.repeat(np.arange(3), n_per).astype(np.int64)
        return x, y

    xtr, ytr = sample(30)
    xte, yte = sample(10)
    d = os.path.join(ROOT, "linear_probe")
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "x_train.npy"), xtr)
    np.save(os.path.join(d, "y_train.npy"), ytr)
    np.save(os.path.join(d, "x_test.npy"), xte)
    np.save(os.path.join(d, "y_test.npy"), yte)
    for c, name in ((0.01, "0.01"), (1.0, "1"), (100.0, "100")):
        lr = LogisticRegression(multi_class="multinomial", solver="lbfgs", C=c, tol=1e-12,
                                max_iter=100000).fit(xtr, ytr)
        np.save(os.path.join(d, "coef_%s.npy" % name), lr.coef_)
        np.save(os.path.join(d, "intercept_%s.npy" % name), lr.intercept_.reshape(1, -1))
        np.save(os.path.join(d, "test_pred_%s.npy" % name), lr.predict(xte).astype(np.int64))
    with open(os.path.join(d, "provenance.json"), "w") as f:
        json.dump({"script": "tools/export_finetune_fixtures.py", "numpy": np.__version__,
                   "sklearn": sklearn.__version__, "torch": torch.__version__}, f, indent=1)


if __name__ == "__main__":
    export_model()
    export_toy()
    export_linear_probe()
