#!/usr/bin/python3
"""Generate the B-Tuning fixtures (tests/data/btuning/): tiny models and one SGD step of the
B-Tuning loss computed by PyTorch, independently of tlkit.

    /usr/bin/python3 tools/make_btuning_fixture.py

Needs python3-torch (1.13) and numpy. Models follow tlkit's image model contract:
forward(x [N, 3, S, S], RGB in [0, 1]) -> (features [N, D], logits [N, 3]); random weights from
torch.manual_seed(0). Writes:

  student.pt    S = 8: Conv2d(3, 4, 3, padding 1) + ReLU, features = mean and max over the
                4 channels (D = 8), logits = Linear(8, 3). No BatchNorm, so train and eval agree.
  teacher_a.pt  S = 6 (fed a shrunk image, antialiased bilinear), normalised outside by
                mean (0.5, 0.4, 0.3) / std (0.2, 0.25, 0.3) (its zoo entry's mean/std):
                Conv2d(3, 5, 3) + tanh + mean (D = 5).
  teacher_b.pt  S = 12 (fed an enlarged image, bilinear): Conv2d(3, 6, 2, stride 2) + ReLU +
                mean (D = 6).
  zoo.json      the three models (teacher_a with its mean/std).
  step/         one B-Tuning SGD step (seed 1): x.npy (float32 [4, 3, 8, 8], uniform [0, 1)), y.npy
                (int64 [4]), head_weight.npy / head_bias.npy (float32 [3, 8] / [3]: the new head),
                m_s.npy, m_a.npy, m_b.npy (float32 [3, D]: LogME weights of student and teachers,
                here random), scores.npy (float64 [2]: LogME of teacher_a, teacher_b),
                pi.npy (float64 [2] = softmax(scores / 0.1)), and with tradeoff 100:
                  loss = CE(head(F_s(x)), y)
                         + 100 * MSE(F_s(x) m_s^T, sum_t pi_t F_t(in_t(x)) m_t^T)
                (in_t: x resized to the teacher's S with F.interpolate(bilinear, align_corners=False,
                antialias when shrinking), then its mean/std), teachers in eval mode without
                gradients; ce.npy, distill.npy, loss.npy (float64 scalars of the float32 values), and
                after one torch.optim.SGD step (lr 0.05, no momentum, no weight decay) over the
                student's parameters and the head: after_<name>.npy for every parameter of the
                student (conv1.weight, conv1.bias, linear.weight, linear.bias: the original
                classifier is off the loss, unchanged) and after_head_weight.npy / after_head_bias.npy.
"""
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "btuning")


class Student(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.linear = torch.nn.Linear(8, 3)

    def forward(self, x):
        h = torch.relu(self.conv1(x))
        f = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        return f, self.linear(f)


class TeacherA(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 5, 3)
        self.linear = torch.nn.Linear(5, 3)

    def forward(self, x):
        f = torch.tanh(self.conv(x)).mean(dim=(2, 3))
        return f, self.linear(f)


class TeacherB(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 2, stride=2)
        self.linear = torch.nn.Linear(6, 3)

    def forward(self, x):
        f = torch.relu(self.conv(x)).mean(dim=(2, 3))
        return f, self.linear(f)


MEAN_A = [0.5, 0.4, 0.3]
STD_A = [0.2, 0.25, 0.3]


def model_input(x, size, mean=None, std=None):
    if size != x.shape[2]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=size < x.shape[2])
    if mean is not None:
        x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    return x


def save(name, a):
    np.save(os.path.join(ROOT, name), a)


def main():
    os.makedirs(os.path.join(ROOT, "step"), exist_ok=True)
    torch.manual_seed(0)
    student, ta, tb = Student().eval(), TeacherA().eval(), TeacherB().eval()
    for m, name in ((student, "student"), (ta, "teacher_a"), (tb, "teacher_b")):
        torch.jit.script(m).save(os.path.join(ROOT, name + ".pt"))
    zoo = {"models": [
        {"name": "student", "file": "student.pt", "kind": "image", "input_size": 8,
         "feature_dim": 8},
        {"name": "teacher_a", "file": "teacher_a.pt", "kind": "image", "input_size": 6,
         "feature_dim": 5, "mean": MEAN_A, "std": STD_A},
        {"name": "teacher_b", "file": "teacher_b.pt", "kind": "image", "input_size": 12,
         "feature_dim": 6},
    ]}
    with open(os.path.join(ROOT, "zoo.json"), "w") as f:
        json.dump(zoo, f, indent=1)
        f.write("\n")

    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, 8, 8, generator=g)
    y = torch.tensor([0, 1, 2, 1])
    head = torch.nn.Linear(8, 3)
    with torch.no_grad():
        head.weight.copy_(torch.randn(3, 8, generator=g) * 0.3)
        head.bias.copy_(torch.randn(3, generator=g) * 0.1)
    m_s = torch.randn(3, 8, generator=g) * 0.5
    m_a = torch.randn(3, 5, generator=g) * 0.5
    m_b = torch.randn(3, 6, generator=g) * 0.5
    scores = torch.tensor([0.30, 0.25], dtype=torch.float64)
    pi = torch.softmax(scores / 0.1, dim=0)
    tradeoff = 100.0
    step = lambda n: os.path.join("step", n)
    save(step("x.npy"), x.numpy())
    save(step("y.npy"), y.numpy().astype(np.int64))
    save(step("head_weight.npy"), head.weight.detach().numpy())
    save(step("head_bias.npy"), head.bias.detach().numpy())
    save(step("m_s.npy"), m_s.numpy())
    save(step("m_a.npy"), m_a.numpy())
    save(step("m_b.npy"), m_b.numpy())
    save(step("scores.npy"), scores.numpy())
    save(step("pi.npy"), pi.numpy())

    student.train()
    feats, _ = student(x)
    logits = head(feats)
    with torch.no_grad():
        fa, _ = ta(model_input(x, 6, MEAN_A, STD_A))
        fb, _ = tb(model_input(x, 12))
        target = float(pi[0]) * (fa @ m_a.t()) + float(pi[1]) * (fb @ m_b.t())
    ce = F.cross_entropy(logits, y)
    distill = tradeoff * F.mse_loss(feats @ m_s.t(), target)
    loss = ce + distill
    params = list(student.named_parameters())
    opt = torch.optim.SGD([p for _, p in params] + list(head.parameters()), lr=0.05)
    opt.zero_grad()
    loss.backward()
    opt.step()
    save(step("ce.npy"), np.float64(ce.item()))
    save(step("distill.npy"), np.float64(distill.item()))
    save(step("loss.npy"), np.float64(loss.item()))
    for name, p in params:
        save(step("after_" + name + ".npy"), p.detach().numpy())
    save(step("after_head_weight.npy"), head.weight.detach().numpy())
    save(step("after_head_bias.npy"), head.bias.detach().numpy())
    print("loss %.6f (ce %.6f, distill %.6f), pi %s" % (loss.item(), ce.item(), distill.item(),
                                                      pi.numpy()))


if __name__ == "__main__":
    main()
