#!/usr/bin/env python3
"""Audit every shared library of a directory and count isa-leak verdicts.

Debian's own libraries are baseline builds whose above-baseline code is all
dispatched (glibc IFUNCs, OpenSSL's capability vector, codec pointer tables):
every leak this reports is a false positive of the audit's heuristic until
proven otherwise.

    python3 benchmarks/scan_system.py [DIR] [--show N]

DIR defaults to the multiarch library directory of this machine's
architecture (``dpkg-architecture -qDEB_HOST_MULTIARCH``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from hwcapdeb.elf_code import shared_objects
from hwcapdeb.errors import HwcapdebError
from hwcapdeb.isa_audit import audit
from hwcapdeb.isa_decode import default_jobs


def default_dir() -> Path:
    multiarch = subprocess.run(
        ["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path("/usr/lib") / multiarch


def scan_one(path: Path) -> tuple[int, int, list[str]] | str:
    """(code bytes, functions judged, leaks) of one library, or why it was skipped."""
    try:
        result = audit(path, jobs=1)  # the libraries are spread over the cores already
    except HwcapdebError as err:
        return str(err)
    findings = result.findings(0)
    found = [f"{f.mnemonic} in {f.function} ({f.reason})" for f in findings if not f.dispatched]
    return result.code_size, len(findings), found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", nargs="?", type=Path)
    parser.add_argument("--show", type=int, default=20, help="leaks to print")
    parser.add_argument("--jobs", type=int, default=0,
                        help="libraries audited at once (default: every core)")
    parser.add_argument("--max-depth", type=int, default=1,
                        help="directory levels to descend (1: the directory itself)")
    args = parser.parse_args(argv)
    root = args.directory or default_dir()
    files = [p for p in shared_objects(root)
             if len(p.relative_to(root).parts) <= args.max_depth]
    start = time.perf_counter()
    code = leaks = dispatched = unreadable = 0
    leaky: list[str] = []
    jobs = args.jobs or default_jobs()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        # one library per task, largest first so no core waits on libLLVM at the end
        order = sorted(files, key=lambda p: p.stat().st_size, reverse=True)
        for path, result in zip(order, pool.map(scan_one, order), strict=True):
            if isinstance(result, str):
                unreadable += 1
                print(f"skip: {result}", file=sys.stderr)
                continue
            size, judged, found = result
            code += size
            dispatched += judged - len(found)
            leaks += len(found)
            leaky.extend(f"{path.name}: {line}" for line in found)
    elapsed = time.perf_counter() - start
    print(f"libraries: {len(files)} ({unreadable} unreadable) in {root}, {jobs} process(es)")
    print(f"code audited: {code / 1e6:.1f} MB in {elapsed:.1f} s ({code / 1e6 / elapsed:.1f} MB/s)")
    print(f"functions above baseline judged dispatched: {dispatched}")
    print(f"isa-leak verdicts: {leaks}")
    for line in leaky[: args.show]:
        print(f"  {line}")
    return 1 if leaks else 0


if __name__ == "__main__":
    sys.exit(main())
