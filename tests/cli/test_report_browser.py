#!/usr/bin/env python3
"""tlkit report in a real browser (Debian's chromium, headless), with the standard library only.

Builds a report from the committed fixtures of tests/data/report (real tlkit outputs of the kit:
rank + evaluate --bootstrap + truth + probe + finetune), opens it in chromium driven over the
DevTools protocol (--remote-debugging-pipe), with the network blocked (an unreachable proxy, every
host resolving to nothing, and every request that still starts intercepted and failed), and
checks:
  * the page loads with no console error, no uncaught exception and no network request;
  * the text of every model name and every metric of rank.json is in the DOM;
  * every SVG in the DOM, serialised by the browser, is well-formed XML (xml.etree);
  * a click on a column header sorts the table (the inline script works without errors);
  * with scripts disabled the page still holds every table and chart;
  * a screenshot has the viewport's size and is not blank;
  * the page prints to a PDF of several pages.
Exit 77 (CTest: skipped) when chromium is not installed. Usage:
  test_report_browser.py --tlkit build/apps/cli/tlkit --data tests/data/report
"""
import argparse
import base64
import fcntl
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
import zlib

SKIP = 77
WIDTH, HEIGHT = 1200, 900


class Browser:
    """Chromium over --remote-debugging-pipe: JSON messages ended by NUL on fds 3 (in), 4 (out)."""

    def __init__(self, chromium, profile):
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        # Out of the way of 3 and 4 before the child moves them there.
        hi_r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 20)
        hi_w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 20)
        os.close(to_child_r)
        os.close(from_child_w)

        def child_fds():
            os.dup2(hi_r, 3)
            os.dup2(hi_w, 4)

        args = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--remote-debugging-pipe", "--user-data-dir=" + profile, "--no-first-run",
                "--no-default-browser-check", "--disable-extensions", "--disable-sync",
                "--disable-background-networking", "--disable-component-update",
                "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
                "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
                "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=child_fds,
                                     pass_fds=(3, 4))
        os.close(hi_r)
        os.close(hi_w)
        self.w, self.r = to_child_w, from_child_r
        self.buf = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def _read_message(self, deadline):
        while b"\0" not in self.buf:
            if time.time() > deadline:
                raise TimeoutError("no message from chromium")
            chunk = os.read(self.r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def _handle_event(self, m):
        self.events.append(m)
        if m.get("method") == "Fetch.requestPaused":  # fail every request that starts
            self.send("Fetch.failRequest", {"requestId": m["params"]["requestId"],
                                            "errorReason": "BlockedByClient"}, wait=False)

    def send(self, method, params=None, wait=True, timeout=20, session=True):
        self.next_id += 1
        mid = self.next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        if not wait:
            return None
        deadline = time.time() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == mid:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            if "method" in m:
                self._handle_event(m)

    def wait_event(self, method, timeout=20):
        for m in self.events:
            if m.get("method") == method:
                return m
        deadline = time.time() + timeout
        while True:
            m = self._read_message(deadline)
            if "method" in m:
                self._handle_event(m)
                if m["method"] == method:
                    return m

    def evaluate(self, expression):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression[:60]}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def close(self):
        try:
            self.send("Browser.close", wait=False, session=False)
            self.proc.wait(timeout=10)
        except Exception:
            self.proc.kill()
            self.proc.wait()


def png_size(png):
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", png[16:24])


def png_not_blank(png):
    """True when the image has real content: with PIL, > 1 % non-white pixels and many colours;
    without it, the decompressed scanlines hold many distinct byte values."""
    try:
        from PIL import Image  # Debian's python3-pil
        import io
        im = Image.open(io.BytesIO(png)).convert("RGB")
        px = list(im.getdata())
        nonwhite = sum(1 for p in px if min(p) < 240)
        colours = len(set(px[:: max(1, len(px) // 20000)]))
        return nonwhite > 0.01 * len(px) and colours > 8
    except ImportError:
        pos, idat = 8, b""
        while pos < len(png):
            n, kind = struct.unpack(">I4s", png[pos:pos + 8])
            if kind == b"IDAT":
                idat += png[pos + 8:pos + 8 + n]
            pos += 12 + n
        return len(set(zlib.decompress(idat))) > 32


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tlkit", required=True)
    ap.add_argument("--data", required=True, help="tests/data/report")
    ap.add_argument("--inject", default="",
                    help="HTML added to the page before </body> (to check that the checks fail)")
    a = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        print("SKIP: chromium is not installed (apt-get install chromium)")
        return SKIP
    failures = []

    def check(cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            failures.append(what)

    with tempfile.TemporaryDirectory() as tmp:
        page = os.path.join(tmp, "report.html")
        d = a.data
        cmd = [a.tlkit, "report", "--rank", f"{d}/rank.json", "--evaluate",
               f"{d}/eval-bootstrap.json", "--truth", f"{d}/truth.csv", "--select", f"{d}/select",
               "--probe", f"{d}/probe",
               "--finetune", f"{d}/ft-resnet20", f"{d}/ft-mobilenet", "--out", page]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        if a.inject:
            html = open(page, encoding="utf-8").read().replace("</body>", a.inject + "</body>")
            open(page, "w", encoding="utf-8").write(html)
        rank = json.load(open(f"{d}/rank.json"))
        names = [m["name"] for m in rank["models"]]
        metrics = rank["metrics"]

        b = Browser(chromium, os.path.join(tmp, "profile"))
        try:
            targets = b.send("Target.getTargets", session=False)["targetInfos"]
            pages = [t for t in targets if t["type"] == "page"]
            target = pages[0]["targetId"] if pages else b.send(
                "Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
            b.session = b.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                               session=False)["sessionId"]
            for m in ("Page.enable", "Runtime.enable", "Log.enable", "Network.enable"):
                b.send(m)
            # Every request off this machine (the page itself is a file:// URL).
            b.send("Fetch.enable", {"patterns": [{"urlPattern": p} for p in
                                                 ("http://*", "https://*", "ws://*", "wss://*",
                                                  "ftp://*")]})
            b.send("Emulation.setDeviceMetricsOverride",
                   {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False})
            b.events.clear()
            url = "file://" + page
            nav = b.send("Page.navigate", {"url": url})
            check("errorText" not in nav, f"the page opens ({nav.get('errorText', '')})")
            deadline = time.time() + 20
            while b.evaluate("document.readyState + ' ' + location.href") != "complete " + url:
                if time.time() > deadline:
                    raise TimeoutError("the page did not load")
                time.sleep(0.1)
            time.sleep(0.3)  # late console messages
            b.evaluate("1")  # drain events

            def of(method):
                return [e["params"] for e in b.events if e.get("method") == method]

            errors = [c for c in of("Runtime.consoleAPICalled") if c["type"] in ("error", "assert")]
            errors += of("Runtime.exceptionThrown")
            errors += [e for e in of("Log.entryAdded") if e["entry"]["level"] == "error"]
            check(not errors, f"no console error ({errors[:2]})")
            requests = [r["request"]["url"] for r in of("Network.requestWillBeSent")]
            others = [u for u in requests if u != url]
            paused = [p["request"]["url"] for p in of("Fetch.requestPaused")
                      if p["request"]["url"] != url]
            check(not others and not paused,
                  f"no network request besides the page ({others[:3]}{paused[:3]})")

            text = b.evaluate("document.body.textContent")
            for n in names + metrics:
                check(n in text, f"'{n}' is in the DOM")
            svgs = b.evaluate("Array.from(document.querySelectorAll('svg'))"
                              ".map(s => new XMLSerializer().serializeToString(s))")
            bad = []
            for s in svgs:
                try:
                    ET.fromstring(s)
                except ET.ParseError as e:
                    bad.append(str(e))
            check(len(svgs) > 20 and not bad, f"{len(svgs)} SVGs, all well-formed XML {bad[:2]}")
            # The heat map's table against SciPy's Kendall tau-b of rank.json's scores.
            shown = b.evaluate("""Array.from(document.querySelectorAll('#metrics tbody tr'))
              .map(r => Array.from(r.cells).slice(1).map(c => c.dataset.v === undefined
                                                         ? null : parseFloat(c.dataset.v)))""")
            try:
                from scipy.stats import kendalltau
                worst = 0.0
                for i, mi in enumerate(metrics):
                    for j, mj in enumerate(metrics):
                        pairs = [(m["scores"][mi], m["scores"][mj]) for m in rank["models"]
                                 if m["scores"][mi] is not None and m["scores"][mj] is not None]
                        ref = kendalltau([p[0] for p in pairs], [p[1] for p in pairs])[0]
                        worst = max(worst, abs(ref - shown[i][j]))
                check(worst < 1e-12, f"heat map = scipy.stats.kendalltau (max diff {worst:.2g})")
            except ImportError:
                print("skip heat map against SciPy (no scipy)")
            tables = b.evaluate("document.querySelectorAll('table').length")
            check(tables >= 15, f"{tables} tables")

            # Sorting: ascending by the first metric's column of the ranking table.
            order = b.evaluate("""(() => {
              const t = document.querySelector('#ranking table.sortable');
              t.tHead.rows[0].cells[2].click();
              return Array.from(t.tBodies[0].rows).map(r => parseFloat(r.cells[2].dataset.v));
            })()""")
            check(order == sorted(order) and len(order) == len(names),
                  f"a click sorts the ranking by {metrics[0]} ascending: {order}")

            png = base64.b64decode(b.send("Page.captureScreenshot", {"format": "png"})["data"])
            check(png_size(png) == (WIDTH, HEIGHT), f"screenshot is {png_size(png)}")
            check(png_not_blank(png), "screenshot is not blank")
            pdf = base64.b64decode(b.send("Page.printToPDF", {"printBackground": True},
                                          timeout=40)["data"])
            pages_in_pdf = pdf.count(b"/Type /Page\n") + pdf.count(b"/Type /Page>") + \
                pdf.count(b"/Type /Page ") + pdf.count(b"/Type/Page/") + pdf.count(b"/Type/Page>")
            check(pdf[:5] == b"%PDF-" and len(pdf) > 20000,
                  f"prints to a PDF ({len(pdf)} bytes, about {pages_in_pdf} pages)")

            # Scripts off: the same tables and charts.
            b.send("Emulation.setScriptExecutionDisabled", {"value": True})
            b.events.clear()
            b.send("Page.reload")
            b.wait_event("Page.loadEventFired")
            while b.evaluate("document.readyState") != "complete":
                time.sleep(0.1)
            b.send("Emulation.setScriptExecutionDisabled", {"value": False})
            svgs_off = b.evaluate("document.querySelectorAll('svg').length")
            tables_off = b.evaluate("document.querySelectorAll('table').length")
            check(svgs_off == len(svgs) and tables_off == tables,
                  f"scripts off: {svgs_off} SVGs and {tables_off} tables")
        finally:
            b.close()
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
