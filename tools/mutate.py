#!/usr/bin/python3
"""Mutation testing: plant one small bug at a time and check that the core tests catch it.

Usage (from the repository root):

    /usr/bin/python3 tools/mutate.py [--mutants tools/mutants.txt] [--only NAME ...]
                                     [--scratch DIR] [--timeout 300] [--jobs 2] [--check]

Each mutant of the list (format below) is one textual change of one source line. The script
copies the working tree (tracked and untracked-but-not-ignored files, as `git ls-files` lists
them) into a scratch folder (default /tmp/tlkit-mutate-$USER/tree; the repository is never
edited), configures a core-only Release build there once (no LibTorch, no Python, no
benchmarks; ccache when installed), checks that the unmutated tests pass, then for each mutant:
applies it, rebuilds tlkit_core_tests incrementally, runs it with a timeout, and restores the
file. A mutant is

    killed     the tests fail (or time out) with it;
    SURVIVED   every test passes with it: either an equivalent mutant (no observable change)
               or a gap in the tests;
    invalid    its pattern does not match exactly one line, or the mutated tree does not build.

--check only checks that each mutant's pattern matches one line of the repository's files.
The exit status is 0 when every valid mutant was killed, 1 otherwise (2: bad usage or a broken
baseline). The report (plain text, one line per mutant) is printed and written to
<scratch>/report.txt, with each run's test output in <scratch>/logs/<name>.log.

The mutant list: blocks separated by blank lines, '#' starts a comment line.

    [name]                      a unique name
    file: src/core/npy.cpp      the file to change, relative to the repository root
    line: offset + header_len   optional: text that picks the line (default: the find text);
                                it must occur on exactly one line of the file
    find: offset + header_len <= size
    replace: header_len <= size the first occurrence of `find` on that line becomes this
    why: ...                    optional: what the mutant models (shown in the report)

A scratch tree whose parent also holds `shared` -> the repository's ../shared lets the tests
that read ../shared/kit run there too (they skip cleanly without it).
"""

import argparse
import getpass
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, ".."))
TARGET = "tlkit_core_tests"


def parse_mutants(path):
    mutants, cur = [], None
    with open(path, encoding="utf-8") as fh:
        for lineno, raw in enumerate(fh, 1):
            line = raw.rstrip("\n")
            if line.startswith("#"):
                continue
            if line.startswith("[") and line.endswith("]"):
                cur = {"name": line[1:-1].strip(), "at": "%s:%d" % (path, lineno)}
                mutants.append(cur)
                continue
            if not line.strip():
                continue
            key, sep, value = line.partition(": ")
            if not sep or cur is None or key not in ("file", "line", "find", "replace", "why"):
                sys.exit("%s:%d: expected '[name]' or 'file|line|find|replace|why: value'"
                         % (path, lineno))
            cur[key] = value
    names = set()
    for m in mutants:
        for k in ("file", "find", "replace"):
            if k not in m:
                sys.exit("%s: mutant %s has no '%s:'" % (m["at"], m["name"], k))
        if m["name"] in names:
            sys.exit("%s: duplicate mutant name %s" % (m["at"], m["name"]))
        names.add(m["name"])
        m.setdefault("line", m["find"])
        m.setdefault("why", "")
    return mutants


def sync_tree(dst):
    """Copies the files git would carry into dst, rewriting only those whose bytes changed (so
    that the scratch build stays incremental), and removes files no longer listed."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                         check=True, capture_output=True).stdout
    files = [f for f in out.decode().split("\0") if f]
    keep = set()
    for rel in files:
        src = os.path.join(ROOT, rel)
        if not os.path.isfile(src) or os.path.islink(src):
            continue
        keep.add(rel)
        target = os.path.join(dst, rel)
        with open(src, "rb") as fh:
            data = fh.read()
        if os.path.exists(target):
            with open(target, "rb") as fh:
                if fh.read() == data:
                    continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "wb") as fh:
            fh.write(data)
    for base, _, names in os.walk(dst):
        for n in names:
            rel = os.path.relpath(os.path.join(base, n), dst)
            if rel not in keep:
                os.remove(os.path.join(base, n))


def run(cmd, cwd, log, timeout=None, env=None):
    """Runs cmd, appending its output to `log`; returns (exit status or 'timeout', seconds)."""
    t0 = time.monotonic()
    with open(log, "a") as fh:
        fh.write("$ %s\n" % " ".join(cmd))
        fh.flush()
        p = subprocess.Popen(cmd, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
            rc = "timeout"
    return rc, time.monotonic() - t0


def failed_tests(log):
    """The names of the failed tests in a gtest log, in order, without repeats."""
    names = []
    with open(log, errors="replace") as fh:
        for line in fh:
            if not line.startswith("[  FAILED  ] "):
                continue
            name = line[13:].split(" (")[0].split(", where")[0].strip()
            if name and not name[0].isdigit() and name not in names:
                names.append(name)
    return names


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mutants", default=os.path.join(HERE, "mutants.txt"))
    ap.add_argument("--only", nargs="*", help="run only these mutants (by name)")
    ap.add_argument("--scratch", default="/tmp/tlkit-mutate-%s" % getpass.getuser())
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per test run")
    ap.add_argument("--jobs", type=int, default=2, help="build parallelism")
    ap.add_argument("--check", action="store_true",
                    help="only check that every mutant matches one line of the repository's files")
    args = ap.parse_args(argv)

    mutants = parse_mutants(args.mutants)
    if args.only:
        unknown = set(args.only) - {m["name"] for m in mutants}
        if unknown:
            sys.exit("unknown mutants: %s" % ", ".join(sorted(unknown)))
        mutants = [m for m in mutants if m["name"] in args.only]
    if args.check:
        bad = 0
        for m in mutants:
            with open(os.path.join(ROOT, m["file"]), encoding="utf-8") as fh:
                hits = [t for t in fh.read().split("\n") if m["line"] in t]
            ok = len(hits) == 1 and m["find"] in hits[0]
            bad += not ok
            print("%-8s %-28s %s (%d matching lines)" % ("ok" if ok else "NO MATCH", m["name"],
                                                       m["file"], len(hits)))
        return 1 if bad else 0
    scratch = os.path.abspath(args.scratch)
    tree, build, logs = (os.path.join(scratch, d) for d in ("tree", "build", "logs"))
    os.makedirs(tree, exist_ok=True)
    shutil.rmtree(logs, ignore_errors=True)
    os.makedirs(logs)
    shared = os.path.normpath(os.path.join(ROOT, "..", "shared"))
    if os.path.isdir(shared) and not os.path.exists(os.path.join(scratch, "shared")):
        os.symlink(shared, os.path.join(scratch, "shared"))
    sync_tree(tree)

    env = dict(os.environ, CCACHE_BASEDIR=scratch)
    base_log = os.path.join(logs, "_baseline.log")
    if not os.path.exists(os.path.join(build, "build.ninja")):
        cfg = ["cmake", "-S", tree, "-B", build, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
               "-DTLKIT_WITH_TORCH=OFF", "-DTLKIT_BUILD_PYTHON=OFF",
               "-DTLKIT_BUILD_BENCHMARKS=OFF", "-DPython_EXECUTABLE=/usr/bin/python3"]
        if shutil.which("ccache"):
            cfg += ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache", "-DCMAKE_C_COMPILER_LAUNCHER=ccache"]
        if run(cfg, scratch, base_log, env=env)[0] != 0:
            sys.exit(print("configure failed: see %s" % base_log) or 2)
    build_cmd = ["cmake", "--build", build, "-j%d" % args.jobs, "--target", TARGET]
    test_cmd = [os.path.join(build, "tests", TARGET), "--gtest_brief=1"]
    if run(build_cmd, scratch, base_log, env=env)[0] != 0:
        sys.exit(print("the unmutated tree does not build: see %s" % base_log) or 2)
    rc, secs = run(test_cmd, os.path.join(build, "tests"), base_log, timeout=args.timeout)
    if rc != 0:
        sys.exit(print("the unmutated tests fail (%s): see %s" % (rc, base_log)) or 2)
    print("baseline: %s passes in %.1f s; %d mutants" % (TARGET, secs, len(mutants)), flush=True)

    results = []
    for m in mutants:
        log = os.path.join(logs, m["name"] + ".log")
        path = os.path.join(tree, m["file"])
        status, detail = None, ""
        try:
            with open(path, encoding="utf-8") as fh:
                original = fh.read()
        except OSError as e:
            status, detail = "invalid", str(e)
            original = None
        if original is not None:
            lines = original.split("\n")
            hits = [i for i, text in enumerate(lines) if m["line"] in text]
            if len(hits) != 1 or m["find"] not in lines[hits[0]]:
                status = "invalid"
                detail = "the line text matches %d lines%s" % (
                    len(hits), "" if len(hits) != 1 else "; find text not on it")
            else:
                i = hits[0]
                lines[i] = lines[i].replace(m["find"], m["replace"], 1)
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write("\n".join(lines))
                try:
                    brc, bsecs = run(build_cmd, scratch, log, env=env)
                    if brc != 0:
                        status, detail = "invalid", "does not build (%s)" % brc
                    else:
                        trc, tsecs = run(test_cmd, os.path.join(build, "tests"), log,
                                         timeout=args.timeout)
                        if trc == 0:
                            status = "SURVIVED"
                        else:
                            status = "killed"
                            failed = failed_tests(log)
                            detail = ("timeout" if trc == "timeout" else
                                      "%d failed: %s" % (len(failed), ", ".join(failed[:3]) +
                                                         (", ..." if len(failed) > 3 else "")))
                        detail = ("build %.0f s, tests %.1f s; " % (bsecs, tsecs)) + detail
                finally:
                    with open(path, "w", encoding="utf-8") as fh:
                        fh.write(original)
        results.append((m, status, detail))
        print("%-9s %-28s %s" % (status, m["name"], detail), flush=True)

    # Rebuild the restored tree so that the scratch build is left unmutated.
    run(build_cmd, scratch, base_log, env=env)
    valid = [r for r in results if r[1] != "invalid"]
    killed = [r for r in valid if r[1] == "killed"]
    survived = [r for r in valid if r[1] == "SURVIVED"]
    lines = ["mutants: %d, valid: %d, killed: %d, survived: %d, invalid: %d"
             % (len(results), len(valid), len(killed), len(survived),
                len(results) - len(valid))]
    for m, status, detail in results:
        lines.append("%-9s %-28s %s  %s" % (status, m["name"], m["file"], detail))
        if status != "killed" and m["why"]:
            lines.append("          why: %s" % m["why"])
    report = "\n".join(lines) + "\n"
    with open(os.path.join(scratch, "report.txt"), "w") as fh:
        fh.write(report)
    print(report, end="")
    return 0 if not survived else 1


if __name__ == "__main__":
    sys.exit(main())
