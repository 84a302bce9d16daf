#!/usr/bin/python3
"""Export a torchvision classification model to tlkit's TorchScript model contract.

    /usr/bin/python3 tools/export_torchvision.py --arch resnet18 --out resnet18.pt
        [--weights resnet18.pth] [--input-size 224]
        [--mean 0.485,0.456,0.406] [--std 0.229,0.224,0.225]
    /usr/bin/python3 tools/export_torchvision.py --list

Needs python3-torch and python3-torchvision (Debian 12: apt-get install python3-torchvision).
Nothing is downloaded: without --weights the model has torchvision's random initialisation, which
shows the format but gives meaningless features; pass a state_dict you have (the .pth files
torchvision's weights enums point to, or your own fine-tuned weights) for real ones.

The contract (docs/extract.md): forward(x) with x float32 [N, 3, S, S], RGB in [0, 1], returns
(features, logits). The normalisation (ImageNet mean/std unless given) is inside the module;
`features` is what the classifier head reads (the model's `fc`, `classifier` or `heads` is
replaced by the identity and kept as the head; Swin's `head` too), flattened to [N, D]; `logits` is the head's output.
The module is scripted (torch.jit.script), or traced when scripting fails, then saved with its input
size and output widths in tlkit.json inside the archive (tlkit extract uses and checks them), loaded
back and checked against the eager model on a random batch.
"""
import argparse
import json
import sys

from typing import List, Tuple

try:
    import torch
    import torchvision
    from torch import Tensor, nn
except ImportError as e:  # pragma: no cover
    raise SystemExit("export_torchvision.py needs PyTorch and torchvision (%s): on Debian, "
                     "apt-get install python3-torch python3-torchvision, and run it with "
                     "/usr/bin/python3" % e)

# Where torchvision's classifiers keep their head: ResNets `fc`; VGG, MobileNets, EfficientNets,
# ConvNeXt `classifier`; ViT `heads`; Swin `head`.
HEAD_ATTRIBUTES = ("fc", "classifier", "heads", "head")


class Contract(nn.Module):
    """x in [0, 1] -> (features [N, D], logits [N, C])."""

    def __init__(self, body: nn.Module, head: nn.Module, mean: List[float], std: List[float]):
        super().__init__()
        self.body = body
        self.head = head
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
        f = self.body((x - self.mean) / self.std)
        return torch.flatten(f, 1), self.head(f)


def split_head(model):
    for name in HEAD_ATTRIBUTES:
        head = getattr(model, name, None)
        if isinstance(head, nn.Module):
            setattr(model, name, nn.Identity())
            return model, head, name
    raise SystemExit("%s has none of the head attributes %s" % (type(model).__name__,
                                                               ", ".join(HEAD_ATTRIBUTES)))


def floats(s):
    v = [float(t) for t in s.split(",")]
    if len(v) != 3:
        raise argparse.ArgumentTypeError("expected 3 comma-separated numbers, got %r" % s)
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--arch", help="torchvision model name (see --list)")
    ap.add_argument("--out", help="the TorchScript file to write")
    ap.add_argument("--weights",
                    help="a state_dict (.pth) for the torchvision model; default: random")
    ap.add_argument("--input-size", type=int, default=224,
                    help="S, the input size: recorded in tlkit.json, and the check batch's "
                         "(default 224)")
    ap.add_argument("--mean", type=floats, default=[0.485, 0.456, 0.406])
    ap.add_argument("--std", type=floats, default=[0.229, 0.224, 0.225])
    ap.add_argument("--list", action="store_true", help="list the classification models and exit")
    args = ap.parse_args()

    if args.list:
        print("\n".join(torchvision.models.list_models(module=torchvision.models)))
        return
    if not args.arch or not args.out:
        ap.error("--arch and --out are required")

    torch.manual_seed(0)
    try:
        model = torchvision.models.get_model(args.arch, weights=None)
    except ValueError as e:
        raise SystemExit("unknown --arch %s: %s (see --list)" % (args.arch, e))
    if args.weights:
        state = torch.load(args.weights, map_location="cpu")
        model.load_state_dict(state.get("state_dict", state) if isinstance(state, dict) else state)
    else:
        print("warning: no --weights: random initialisation (the format is right, the features "
              "are not meaningful)", file=sys.stderr)
    model.eval()
    body, head, head_name = split_head(model)
    wrapped = Contract(body, head, args.mean, args.std).eval()

    s = args.input_size
    x = torch.rand(2, 3, s, s, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want_f, want_l = wrapped(x)
        try:
            scripted = torch.jit.script(wrapped)
            how = "scripted"
        except Exception as e:  # some torchvision models do not script
            print("note: scripting failed (%s); tracing at S = %d"
                  % (str(e).splitlines()[0], s), file=sys.stderr)
            scripted = torch.jit.trace(wrapped, x)
            how = "traced"
    # The size and widths travel inside the file (tlkit.json): tlkit extract uses the size when
    # --input-size is left out and refuses another one.
    record = {"input_size": s, "feature_dim": int(want_f.shape[1]),
              "logits_dim": int(want_l.shape[1])}
    scripted.save(args.out, _extra_files={"tlkit.json": json.dumps(record)})

    loaded = torch.jit.load(args.out).eval()
    with torch.no_grad():
        got_f, got_l = loaded(x)
    err = max(float((got_f - want_f).abs().max()), float((got_l - want_l).abs().max()))
    if err > 1e-4 * max(1.0, float(want_f.abs().max())):
        raise SystemExit("the exported model disagrees with the eager one by %g" % err)
    entry = {
        "name": args.arch,
        "file": args.out,
        "kind": "image",
        "feature_dim": int(want_f.shape[1]),
        "input_size": args.input_size,
        "logits_dim": int(want_l.shape[1]),
        "pretraining": "torchvision %s (%s)" % (args.arch, args.weights or "random weights"),
        "source": "torchvision %s, head '%s', %s" % (torchvision.__version__, head_name, how),
    }
    print(json.dumps(entry, indent=1))


if __name__ == "__main__":
    main()
