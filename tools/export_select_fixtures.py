#!/usr/bin/python3
"""Generate the fixtures of the `tlkit select` tests (tests/data/select/).

    /usr/bin/python3 tools/export_select_fixtures.py

Needs python3-torch (1.13), numpy, PIL and sklearn (Debian 12's /usr/bin/python3). A tiny zoo in
which the frozen-feature ranking and the fine-tuned ranking disagree by construction:

  data/{train,val,test}/{a,b}/NN.png  8 x 8 RGB images (numpy seed 0): every pixel's green and
      blue are 128 + U{-100..100}; its red is 128 - 25 (class a) or 128 + 25 (class b) plus
      U{-100..100} (clipped to 0..255). One pixel's red tells the class about 5/8 of the time;
      the mean red of the 64 pixels tells it always. 30 images per class in train, 10 in val
      and in test.
  models/learner.pt  features = Linear(3 -> 4)(8 (mean colour of the image - 0.5)), the
      weights of red initialised to 0 (so the frozen features hold the green and blue noise
      only), trainable: fine-tuning learns the weight of red and separates the classes.
  models/pixels2.pt  features = s * (red of pixels (0, 0) and (7, 7)) with one trainable scale s:
      fine-tuning cannot add information, so it stays at what two pixels tell.
  models/pixel1.pt   the same with the red of pixel (0, 0) only.
  models/green.pt    the same with the green of 4 pixels: no information about the class.
  All: forward(x [N, 3, 8, 8] in [0, 1]) -> (features, logits [N, 2]) (the logits a fixed random
  Linear of the features), scripted, torch.manual_seed(0).
  zoo.json  the four models (input_size 8).
  reference.json  per model, the test accuracy of sklearn's LogisticRegression (C = 1) on the
      frozen features of train (the ceiling of any frozen-feature method), and of a PyTorch
      fine-tuning of the model (its trainable parameters and a new linear head, SGD momentum 0.9,
      lr 0.1 (head 1.0), 12 epochs, batch 32, seed 0), which shows the disagreement: learner is
      the worst frozen and the best fine-tuned.
"""
import json
import os

import numpy as np
import sklearn
import torch
from PIL import Image
from sklearn.linear_model import LogisticRegression

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "select")
COUNTS = {"train": 30, "val": 10, "test": 10}


class Learner(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(3, 4)
        with torch.no_grad():
            self.proj.weight[:, 0] = 0.0  # blind to red, the colour that tells the class
        self.linear = torch.nn.Linear(4, 2)

    def forward(self, x):
        f = self.proj(8.0 * (x.mean(dim=(2, 3)) - 0.5))
        return f, self.linear(f)


class Pixels(torch.nn.Module):
    def __init__(self, channel: int, rows, cols):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(1))
        self.channel = channel
        self.rows = rows
        self.cols = cols
        self.linear = torch.nn.Linear(len(rows), 2)

    def forward(self, x):
        parts = []
        for i in range(len(self.rows)):
            parts.append(x[:, self.channel, self.rows[i], self.cols[i]])
        f = self.scale * torch.stack(parts, dim=1)
        return f, self.linear(f)


def write_images(rng):
    data = {}
    for split, n in COUNTS.items():
        xs, ys = [], []
        for label, cls in enumerate(["a", "b"]):
            folder = os.path.join(ROOT, "data", split, cls)
            os.makedirs(folder, exist_ok=True)
            for i in range(n):
                img = 128 + rng.integers(-100, 101, size=(8, 8, 3))
                img[:, :, 0] += 25 if label == 1 else -25
                img = np.clip(img, 0, 255).astype(np.uint8)
                Image.fromarray(img, "RGB").save(os.path.join(folder, f"{i:02d}.png"))
                xs.append(img.transpose(2, 0, 1).astype(np.float32) / 255.0)
                ys.append(label)
        data[split] = (torch.from_numpy(np.stack(xs)), torch.tensor(ys))
    return data


def finetune(model, train, test, seed=0):
    torch.manual_seed(seed)
    x, y = train
    with torch.no_grad():
        d = model(x[:1])[0].shape[1]
    head = torch.nn.Linear(d, 2)
    params = [p for n, p in model.named_parameters() if not n.startswith("linear.")]
    opt = torch.optim.SGD([{"params": params, "lr": 0.1}, {"params": head.parameters(), "lr": 1.0}],
                          momentum=0.9)
    for _ in range(12):
        perm = torch.randperm(len(y))
        for b in range(0, len(y), 32):
            idx = perm[b:b + 32]
            loss = torch.nn.functional.cross_entropy(head(model(x[idx])[0]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        pred = head(model(test[0])[0]).argmax(1)
    return float((pred == test[1]).float().mean())


def main():
    rng = np.random.default_rng(0)
    data = write_images(rng)
    torch.manual_seed(0)
    models = {
        "learner": Learner(),
        "pixels2": Pixels(0, [0, 7], [0, 7]),
        "pixel1": Pixels(0, [0], [0]),
        "green": Pixels(1, [0, 2, 5, 7], [0, 3, 5, 7]),
    }
    os.makedirs(os.path.join(ROOT, "models"), exist_ok=True)
    zoo = {"models": []}
    reference = {"torch": torch.__version__, "numpy": np.__version__,
                 "sklearn": sklearn.__version__, "models": {}}
    for name, m in models.items():
        m.eval()
        torch.jit.script(m).save(os.path.join(ROOT, "models", name + ".pt"))
        with torch.no_grad():
            ftr = m(data["train"][0])[0].numpy()
            fte = m(data["test"][0])[0].numpy()
        clf = LogisticRegression(C=1.0, max_iter=10000).fit(ftr, data["train"][1].numpy())
        frozen = float((clf.predict(fte) == data["test"][1].numpy()).mean())
        tuned = finetune(m, data["train"], data["test"])
        reference["models"][name] = {"frozen_probe_test_acc": frozen, "finetuned_test_acc": tuned}
        zoo["models"].append({"name": name, "file": f"models/{name}.pt", "kind": "image",
                              "input_size": 8, "feature_dim": int(ftr.shape[1]), "logits_dim": 2})
    with open(os.path.join(ROOT, "zoo.json"), "w") as f:
        json.dump(zoo, f, indent=1)
        f.write("\n")
    with open(os.path.join(ROOT, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")
    print(json.dumps(reference["models"], indent=1))


if __name__ == "__main__":
    main()
