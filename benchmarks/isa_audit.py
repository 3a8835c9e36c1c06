#!/usr/bin/env python3
"""Speed of the instruction audit next to ``objdump -d`` on the same large library.

    python3 benchmarks/isa_audit.py [LIBRARY] [--repeat N]

LIBRARY defaults to the shared library with the most code in this machine's
multiarch directory (libLLVM, libicu, libz3... whatever is installed).  Both
tools read the whole file and decode every executable section; objdump's
output goes to /dev/null.  Prints seconds, MB/s of code and the ratio.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from hwcapdeb.elf import read_code, shared_objects
from hwcapdeb.isa_scan import audit


def multiarch_dir() -> Path:
    multiarch = subprocess.run(
        ["dpkg-architecture", "-qDEB_HOST_MULTIARCH"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path("/usr/lib") / multiarch


def largest_library(root: Path) -> Path:
    """The library with the most executable bytes (file size first, to read few headers)."""
    candidates = sorted(shared_objects(root), key=lambda p: p.stat().st_size, reverse=True)[:8]
    return max(candidates, key=lambda p: read_code(p).code_size)


def best_of(repeat: int, action: object) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("library", nargs="?", type=Path)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best counts")
    args = parser.parse_args(argv)
    objdump = shutil.which("objdump")
    if objdump is None:
        print("objdump not found: apt-get install binutils", file=sys.stderr)
        return 2
    library = args.library or largest_library(multiarch_dir())
    code = read_code(library).code_size
    results: dict[str, object] = {}

    def run_audit() -> None:
        results["audit"] = audit(library)

    def run_objdump() -> None:
        subprocess.run([objdump, "-d", str(library)],
                       stdout=subprocess.DEVNULL, check=True)

    t_audit = best_of(args.repeat, run_audit)
    t_objdump = best_of(args.repeat, run_objdump)
    mb = code / 1e6
    print(f"library: {library} ({library.stat().st_size / 1e6:.1f} MB file, {mb:.1f} MB code)")
    print(f"hwcapdeb audit (iced-x86): {t_audit:7.2f} s  {mb / t_audit:6.1f} MB/s")
    print(f"objdump -d:                {t_objdump:7.2f} s  {mb / t_objdump:6.1f} MB/s")
    print(f"ratio objdump/audit: {t_objdump / t_audit:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
