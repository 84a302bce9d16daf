#!/usr/bin/env python3
"""Regenerates docs/report-screenshot.png: the top of a tlkit report of the kit, as Debian's
chromium renders it (headless), reduced to a small palette PNG.

The report is built from tests/data/report (real tlkit outputs on the kit: four image models
ranked on clothing-small-160, evaluated with --bootstrap against their fine-tuned accuracies, a
layer probe and two fine-tuning runs; tests/data/report/README.md has the commands). Needs
chromium and Python's PIL (Debian: chromium, python3-pil). Usage, from the repository root:
  /usr/bin/python3 tools/make_report_screenshot.py --tlkit build/apps/cli/tlkit
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tlkit", required=True)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "report-screenshot.png"))
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=2000, help="the part of the page shown")
    a = ap.parse_args()
    chromium = shutil.which("chromium")
    if not chromium:
        sys.exit("chromium is not installed (apt-get install chromium)")
    d = os.path.join(ROOT, "tests", "data", "report")
    with tempfile.TemporaryDirectory() as tmp:
        page = os.path.join(tmp, "report.html")
        subprocess.run([a.tlkit, "report", "--rank", f"{d}/rank.json", "--evaluate",
                        f"{d}/eval-bootstrap.json", "--truth", f"{d}/truth.csv", "--probe",
                        f"{d}/probe", "--finetune", f"{d}/ft-resnet20", f"{d}/ft-mobilenet",
                        "--out", page], check=True)
        shot = os.path.join(tmp, "shot.png")
        subprocess.run([chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--hide-scrollbars", "--user-data-dir=" + os.path.join(tmp, "profile"),
                        "--proxy-server=127.0.0.1:9", f"--window-size={a.width},{a.height}",
                        "--screenshot=" + shot, "file://" + page],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        im = Image.open(shot).convert("RGB")
        # 64 colours keep the Okabe-Ito hues and text crisp at a fraction of the size.
        im.quantize(colors=64, method=Image.Quantize.MEDIANCUT).save(a.out, optimize=True)
    size = os.path.getsize(a.out)
    print(f"wrote {a.out} ({im.size[0]} x {im.size[1]}, {size // 1024} KiB)")
    if size > 300 * 1024:
        sys.exit(f"{a.out} is over 300 KiB: lower --height")


if __name__ == "__main__":
    main()
