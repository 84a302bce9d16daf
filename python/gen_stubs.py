#!/usr/bin/python3
r"""Writes the type stubs of the tlkit package with one entry per registered metric.

    PYTHONPATH=<build>/python /usr/bin/python3 python/gen_stubs.py \
        --out <build>/python/tlkit/__init__.pyi

The convenience functions (tlkit.hscore, tlkit.leep, ...) are generated at import time from the
metric registry, so their stubs are too: the build (python/CMakeLists.txt, and setup.py for pip)
runs this script on the freshly built module and writes python/tlkit/__init__.pyi with the
section between the GENERATED markers filled in. The committed stub leaves that section empty,
so it can never fall out of step with the registry.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN = "# BEGIN GENERATED METRICS (python/gen_stubs.py)"
END = "# END GENERATED METRICS"
TEMPLATE = os.path.join(HERE, "tlkit", "__init__.pyi")


def render(tlkit):
    """The generated block (without the markers) for the imported package `tlkit`."""
    registry = {m["name"]: m for m in tlkit.metrics()}
    lines = []
    for name in tlkit._METRIC_FUNCTIONS:
        info = registry[name]
        data = [i for i in info["inputs"] if i != "labels"] + ["labels"]
        args = ["%s: ArrayLike" % i for i in data] + ["*"]
        for p in info["params"]:
            kind = "str" if p["type"] == "choice" else "float"
            args.append("%s: Optional[%s] = ..." % (p["name"], kind))
        args += ["seed: int = ...", "threads: int = ..."]
        lines.append("def %s(%s) -> float: ..." % (name, ", ".join(args)))
    return "\n".join(lines)


def fill(text, block):
    """`text` with the section between the markers replaced by `block`."""
    head, rest = text.split(BEGIN + "\n", 1)
    _, tail = rest.split(END, 1)
    return head + BEGIN + "\n" + (block + "\n" if block else "") + END + tail


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="stub file to write")
    parser.add_argument("--template", default=TEMPLATE, help="stub with empty generated section")
    args = parser.parse_args()
    # This script lives next to the source package python/tlkit, which has no extension: import
    # the built one from PYTHONPATH instead.
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]
    import tlkit
    with open(args.template) as f:
        text = fill(f.read(), render(tlkit))
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
