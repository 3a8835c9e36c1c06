#!/usr/bin/env python3
"""A rebuild campaign in small: build, verify and bench each package, then one report.

    .venv/bin/python benchmarks/campaign.py [--packages vecmath,xxhash,...] [--out DIR] [-j N]

Each package (the example, examples/vecmath, and the corpus of tests/corpus.py,
bookworm sources fetched once into ~/.cache/hwcapdeb/corpus) is built with

    hwcapdeb build SRC -p x86-64-v2,x86-64-v3,x86-64-v4 --out DIR/NAME \\
                   --bench benchmarks/campaign-packages

(DEB_BUILD_OPTIONS=nocheck: test suites are not what a campaign measures
here), which saves NAME_VERSION_ARCH.verify.json and, for a package with a
Bench-Command in benchmarks/campaign-packages, .bench.json beside the
.changes.  A package that fails to build leaves its .build log.  Then

    hwcapdeb report DIR

prints the table (Markdown; --format json for JSON).  Bench commands run in
DIR, where 'corpus' is a 24 MiB file written once.  Builds run one after the
other; each gets -j N (default: every core).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import corpus  # noqa: E402

PROFILES = "x86-64-v2,x86-64-v3,x86-64-v4"
OPTIONS = Path(__file__).resolve().parent / "campaign-packages"
PACKAGES = ("vecmath", *corpus.PACKAGES)


def hwcapdeb() -> list[str]:
    script = Path(sys.executable).parent / "hwcapdeb"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "hwcapdeb.cli"]


def write_corpus(path: Path, size: int = 24 << 20) -> None:
    """Half text (this repository's sources, repeated), half pseudo-random binary data."""
    if path.is_file() and path.stat().st_size == size:
        return
    text = b"".join(p.read_bytes() for p in sorted(REPO.glob("hwcapdeb/**/*.py")))
    rng = random.Random(0)
    binary = bytes(rng.getrandbits(8) if rng.random() < 0.3 else 0 for _ in range(1 << 20))
    data = bytearray()
    while len(data) < size:
        data += text + binary
    path.write_bytes(bytes(data[:size]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", default=",".join(PACKAGES))
    parser.add_argument("--out", type=Path, default=REPO / "out" / "campaign")
    parser.add_argument("-j", "--jobs", type=int, default=0)
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    write_corpus(out / "corpus")
    env = {**os.environ, "DEB_BUILD_OPTIONS": "nocheck"}
    for name in args.packages.split(","):
        source = REPO / "examples" / "vecmath" if name == "vecmath" else corpus.fetch(name)
        argv_build = [*hwcapdeb(), "build", str(source), "-p", PROFILES, "--out",
                      str(out / name), "-j", str(args.jobs), "--bench", str(OPTIONS)]
        for item in corpus.VARIANT_ENV.get(name, ()):
            argv_build += ["--variant-env", item]
        start = time.perf_counter()
        done = subprocess.run(argv_build, cwd=out, env=env, capture_output=True, text=True)
        status = "built" if done.returncode == 0 else f"failed (exit {done.returncode})"
        print(f"{name}: {status} in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        if done.returncode != 0:
            print("  " + (done.stderr.strip().splitlines() or ["?"])[-1], file=sys.stderr)
    return subprocess.run([*hwcapdeb(), "report", str(out), "--format", args.format]).returncode


if __name__ == "__main__":
    sys.exit(main())
