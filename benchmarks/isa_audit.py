#!/usr/bin/env python3
"""Speed of the instruction audit next to ``objdump -d`` on the same large library.

    python3 benchmarks/isa_audit.py [LIBRARY] [--repeat N] [--jobs N] [--target 10]

LIBRARY defaults to the shared library with the most code in this machine's
multiarch directory (libLLVM, libicu, libz3... whatever is installed).  Both
tools read the whole file and decode every executable section; objdump's
output goes to /dev/null.  Each round runs the audit on every core, the audit
on one core and objdump once each, one after the other, so the load of a
shared machine hits all alike.  Prints seconds, MB/s of code and the ratios;
exits 1 when the audit on every core is not ``--target`` times faster.  The
CPU seconds beside each time (the audit's workers included) say how much of
a slow run was the machine's other load.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hwcapdeb.elf_code import read_code, shared_objects
from hwcapdeb.isa_audit import audit
from hwcapdeb.isa_decode import default_jobs


def multiarch_dir() -> Path:
    multiarch = subprocess.run(
        ["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path("/usr/lib") / multiarch


def largest_library(root: Path) -> Path:
    """The library with the most executable bytes (file size first, to read few headers)."""
    candidates = sorted(shared_objects(root), key=lambda p: p.stat().st_size, reverse=True)[:8]
    return max(candidates, key=lambda p: read_code(p).code_size)


def cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (the audit's workers, objdump)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), \
        resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(action: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``action``: CPU time does not move with the load."""
    start, cpu = time.perf_counter(), cpu_seconds()
    action()
    return time.perf_counter() - start, cpu_seconds() - cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", nargs="?", type=Path)
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds (each runs every contender once); the best counts")
    parser.add_argument("--jobs", type=int, default=None,
                        help="decoding processes of the audit (default: every core)")
    parser.add_argument("--target", type=float, default=10.0,
                        help="ratio objdump/audit the audit must reach")
    args = parser.parse_args(argv)
    objdump = shutil.which("objdump")
    if objdump is None:
        print("objdump not found: apt-get install binutils", file=sys.stderr)
        return 2
    library = args.library or largest_library(multiarch_dir())
    code = read_code(library).code_size
    jobs = args.jobs or default_jobs()
    contenders: dict[str, Callable[[], object]] = {
        f"hwcapdeb audit, {jobs} process(es)": lambda: audit(library, jobs=jobs),
        "hwcapdeb audit, 1 process": lambda: audit(library, jobs=1),
        "objdump -d": lambda: subprocess.run([objdump, "-d", str(library)],
                                             stdout=subprocess.DEVNULL, check=True),
    }
    if jobs == 1:
        del contenders["hwcapdeb audit, 1 process"]
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in contenders}
    load_before = os.getloadavg()[0]
    for _ in range(args.repeat):
        # one round: every contender once, side by side, so machine load hits all alike
        for name, action in contenders.items():
            times[name].append(timed(action))
    mb = code / 1e6
    print(f"library: {library} ({library.stat().st_size / 1e6:.1f} MB file, {mb:.1f} MB code)")
    print(f"cores: {default_jobs()}, rounds: {args.repeat} (best of each shown), "
          f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")
    fastest = {name: min(values) for name, values in times.items()}
    best = {name: wall for name, (wall, _) in fastest.items()}
    for name, (seconds, cpu) in fastest.items():
        print(f"{name + ':':34s} {seconds:7.2f} s  {mb / seconds:6.1f} MB/s  (CPU {cpu:.2f} s)")
    audit_name = next(iter(contenders))
    ratio = best["objdump -d"] / best[audit_name]
    verdict = "met" if ratio >= args.target else "NOT met"
    print(f"ratio objdump/audit: {ratio:.1f}x (target {args.target:g}x: {verdict})")
    if "hwcapdeb audit, 1 process" in best:
        print(f"ratio objdump/audit on one core: "
              f"{best['objdump -d'] / best['hwcapdeb audit, 1 process']:.1f}x")
    return 0 if ratio >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
