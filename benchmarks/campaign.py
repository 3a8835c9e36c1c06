#!/usr/bin/env python3
"""A rebuild campaign in small: build, verify and bench each package, then one report.

    .venv/bin/python benchmarks/campaign.py [--packages vecmath,xxhash,...] [--out DIR] [-j N]

Each package (the example, examples/vecmath, and the corpus of tests/corpus.py,
Debian sources of this release fetched once into ~/.cache/hwcapdeb/corpus) is built with

    hwcapdeb build SRC -p x86-64-v2,x86-64-v3,x86-64-v4 --out DIR/NAME \\
                   --bench benchmarks/campaign-packages

(DEB_BUILD_OPTIONS=nocheck: test suites are not what a campaign measures
here), which saves NAME_VERSION_ARCH.verify.json and, for a package with a
Bench-Command in benchmarks/campaign-packages, .bench.json beside the
.changes.  A package that fails to build leaves its .build log.  Then

    hwcapdeb report DIR

prints the table (Markdown; --format json for JSON).  Bench commands run in
DIR, where campaign.py puts their inputs first (corpus-24M.txt, xxhsum and
minigzip linked against the libraries, as benchmarks/variants.py does).
Builds run one after the other; each gets -j N (default: every core); a
package built by an earlier run into DIR is only verified and benched again
(--rebuild builds it again).
"""

from __future__ import annotations

import argparse
import os
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


def consumers(out: Path) -> None:
    """What the bench commands of campaign-packages run, in ``out`` (as variants.py does).

    corpus-24M.txt; xxhsum-shared, built from xxhash's source against
    libxxhash.so.0 (Debian's xxhsum embeds the hash code); minigzip, zlib's own,
    against libz.so.1.  Linked against this system's copies: bench forces the
    package's variants in at run time.
    """
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import variants

    variants.text_corpus(out / "work")
    for name, program, sources, lib in (
        ("xxhash", "xxhsum-shared", "cli/*.c", "libxxhash.so.0"),
        ("zlib", "minigzip", "test/minigzip.c", "libz.so.1"),
    ):
        if (out / program).exists():
            continue
        (out / f"src-{name}").mkdir(exist_ok=True)
        src = variants.unpacked_source(corpus.fetch(name), out / f"src-{name}")
        subprocess.run(["gcc", "-O2", f"-I{src}", "-o", str(out / program),
                        *map(str, sorted(src.glob(sources))), f"-l:{lib}"], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", default=",".join(PACKAGES))
    parser.add_argument("--out", type=Path, default=REPO / "out" / "campaign")
    parser.add_argument("-j", "--jobs", type=int, default=0)
    parser.add_argument("--format", choices=("markdown", "json"), default="markdown")
    parser.add_argument("--rebuild", action="store_true",
                        help="build again packages built by an earlier run (default: only "
                        "verify and bench them again)")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    consumers(out)
    env = {**os.environ, "DEB_BUILD_OPTIONS": "nocheck"}
    for name in args.packages.split(","):
        built = sorted((out / name).glob("*.changes"))
        if built and not args.rebuild:  # built before: verify and bench again
            argv_results = [*hwcapdeb(), "sbuild-hook", "results", "--package-options",
                            str(OPTIONS), str(built[-1])]
            subprocess.run(argv_results, cwd=out, check=False, stdout=subprocess.DEVNULL)
            print(f"{name}: {built[-1].name} measured again", file=sys.stderr)
            continue
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
