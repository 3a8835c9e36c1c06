"""What each glibc-hwcaps variant buys: `hwcapdeb bench` on real packages, side by side.

    .venv/bin/python benchmarks/variants.py [--rounds N] [--only NAME ...] [--markdown]

For each package it builds (once, cached in ~/.cache/hwcapdeb/bench/NAME) the
baseline plus x86-64-v2/v3/v4 with `hwcapdeb build`, unpacks the .debs,
builds a consumer program against the package's own shared library where the
Debian tool links its library statically, and runs `hwcapdeb bench` (the
library call, the same code as the command) on it.  Every row is one forced
variant measured in the same interleaved run as its baseline.

Packages and commands:
* examples/vecmath: its vecmath-bench (all three kernels, CPU time) and a
  one-kernel driver (benchmarks/vm_kernel.c: dot, saxpy, sum; CPU time).
  Ideal width ratios over SSE2 (4 floats): AVX2 (8) 2x, AVX-512 (16) 4x.
* xxhash: xxhsum built from the same source against libxxhash.so.0
  (Debian's xxhsum embeds the hash code), `xxhsum -b5 -i1` = XXH3_64b,
  its own MB/s figure (--score, higher is better).
* zlib: zlib's own minigzip (test/minigzip.c) against libz.so.1, compressing
  a 24 MiB corpus (CPU time).
* lz4: Debian's zstd (links liblz4.so.1) writing .lz4 (CPU time); Debian's
  lz4 program is statically linked, so it cannot see a variant.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from hwcapdeb.bench.result import BenchOptions, BenchReport  # noqa: E402
from hwcapdeb.bench.run import run_bench  # noqa: E402
from hwcapdeb.errors import HwcapdebError  # noqa: E402

PROFILES = "x86-64-v2,x86-64-v3,x86-64-v4"
LIBDIR = "usr/lib/x86_64-linux-gnu"


@dataclass
class Command:
    label: str
    argv: list[str]
    options: Mapping[str, object] = field(default_factory=dict)  # BenchOptions overrides


@dataclass
class Package:
    name: str
    source: Callable[[Path], Path]  # work dir -> source dir or .dsc
    commands: Callable[[Path, Path], list[Command]]  # (work dir, unpacked root) -> commands
    #: extra `hwcapdeb build` options (the per-package knobs a maintainer would set)
    build_args: tuple[str, ...] = ()
    #: when `hwcapdeb build` cannot build it: (make target, real name, SONAME)
    direct: tuple[str, str, str] | None = None


def sh(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    print("+ " + " ".join(argv), file=sys.stderr)
    return subprocess.run(argv, check=True, text=True, **kw)  # type: ignore[call-overload]


def corpus_dsc(name: str) -> Callable[[Path], Path]:
    def get(_work: Path) -> Path:
        from tests.corpus import fetch  # apt-get source once, cached

        return fetch(name)

    return get


def unpacked_source(dsc: Path, work: Path) -> Path:
    """The upstream tree of ``dsc`` (for the consumer programs' sources)."""
    dest = work / "src"
    if not dest.is_dir():
        sh(["dpkg-source", "--no-check", "-x", str(dsc), str(dest)], capture_output=True)
    return dest


def build(pkg: Package, work: Path) -> Path:
    """The .changes of the package built with every x86-64 level (cached)."""
    out = work / "debs"
    found = sorted(out.glob("*.changes"))
    if found:
        return found[-1]
    out.mkdir(parents=True, exist_ok=True)
    failed = out / "build-failed"  # remembered: a failing build is not retried every run
    argv = [sys.executable, "-m", "hwcapdeb.cli", "build", str(pkg.source(work)),
            "--profile", PROFILES, "--out", str(out), *pkg.build_args]
    if failed.exists():
        raise subprocess.CalledProcessError(2, argv)
    # the package's own test suite is not what is measured here (lz4's fuzzers take minutes)
    options = (os.environ.get("DEB_BUILD_OPTIONS", "") + " nocheck").strip()
    try:
        sh(argv, env={**os.environ, "DEB_BUILD_OPTIONS": options}, stdout=sys.stderr)
    except subprocess.CalledProcessError:
        failed.touch()
        raise
    return sorted(out.glob("*.changes"))[-1]


def direct_tree(pkg: Package, work: Path) -> Path:
    """Baseline + one build per level of the library alone, laid out like the package.

    For packages `hwcapdeb build` cannot build yet: the upstream Makefile
    target, Debian's dpkg-buildflags plus each profile's flags, in clean copies
    of the unpacked `apt-get source`.
    """
    from hwcapdeb.profiles import ProfileRegistry

    assert pkg.direct is not None
    target, realname, soname = pkg.direct
    root = work / "direct-root"
    if (root / LIBDIR / soname).exists():
        return root
    src = unpacked_source(pkg.source(work), work)
    base_flags = sh(["dpkg-buildflags", "--get", "CFLAGS"], capture_output=True).stdout.split()
    for level in ["baseline", *PROFILES.split(",")]:
        copy = work / f"direct-{level}"
        if copy.exists():
            shutil.rmtree(copy)
        shutil.copytree(src, copy, symlinks=True)
        flags = [] if level == "baseline" else \
            list(ProfileRegistry().resolve(level).flags_for("gcc")[0])
        sh(["make", "-C", str(copy), "-j2", target, "CFLAGS=" + " ".join([*base_flags, *flags])],
           capture_output=True)
        dest = root / LIBDIR if level == "baseline" else root / LIBDIR / "glibc-hwcaps" / level
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy2(copy / realname, dest / realname)
        # as dh_strip would: the added size is what the package would ship
        sh(["strip", "--strip-unneeded", str(dest / realname)])
        (dest / soname).unlink(missing_ok=True)
        (dest / soname).symlink_to(realname)
        shutil.rmtree(copy)
    return root


def unpack(changes: Path, work: Path) -> Path:
    root = work / "root"
    if not root.is_dir():
        for deb in sorted(changes.parent.glob("*.deb")):
            if "-dbgsym" not in deb.name:
                sh(["dpkg-deb", "-x", str(deb), str(root)])
    return root


def text_corpus(work: Path, mib: int = 24) -> Path:
    """Deterministic, compressible input: seeded pseudo-text with numbers and repeats."""
    path = work.parent / f"corpus-{mib}M.txt"
    if path.exists():
        return path
    rng = random.Random(6)
    words = [
        "".join(rng.choice("etaoinshrdlucmfwypvbgkjqxz") for _ in range(rng.randint(2, 9)))
        for _ in range(4000)
    ]
    lines = []
    size = 0
    while size < mib << 20:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(5, 14)))
        line += f" {rng.randint(0, 10**6)}\n"
        lines.append(line)
        size += len(line)
    path.write_text("".join(lines))
    return path


# -- the packages --------------------------------------------------------------------


def vecmath_commands(work: Path, root: Path) -> list[Command]:
    driver = work / "vm_kernel"
    sh(["gcc", "-O2", f"-I{root}/usr/include", "-o", str(driver),
        str(REPO / "benchmarks/vm_kernel.c"), f"-L{root}/{LIBDIR}", "-l:libvecmath.so.1"])
    cpu = {"metric": "cpu"}
    return [
        Command("vecmath-bench 4096 (dot+saxpy+sum)", ["usr/bin/vecmath-bench", "4096"], cpu),
        *(Command(f"vm_kernel {k} (one kernel)", [str(driver), k], cpu)
          for k in ("dot", "saxpy", "sum")),
    ]


def xxhash_commands(work: Path, root: Path) -> list[Command]:
    src = unpacked_source(corpus_dsc("xxhash")(work), work)
    xxhsum = work / "xxhsum-shared"
    # no XXH_INLINE_ALL, no XXHSUM_DISPATCH: every hash call goes to libxxhash.so.0
    sh(["gcc", "-O2", f"-I{src}", "-o", str(xxhsum), *map(str, sorted(src.glob("cli/*.c"))),
        f"-L{root}/{LIBDIR}", "-l:libxxhash.so.0"])
    return [Command("xxhsum -b5 -i1 (XXH3_64b, MB/s)", [str(xxhsum), "-b5", "-i1"],
                    {"score": r"\(([0-9.]+) MB/s\)", "higher_is_better": True})]


def zlib_commands(work: Path, root: Path) -> list[Command]:
    src = unpacked_source(corpus_dsc("zlib")(work), work)
    minigzip = work / "minigzip"
    sh(["gcc", "-O2", f"-I{src}", "-o", str(minigzip), str(src / "test/minigzip.c"),
        f"-L{root}/{LIBDIR}", "-l:libz.so.1"])
    corpus = text_corpus(work)
    return [Command("minigzip -c -6 corpus (deflate)", [str(minigzip), "-c", "-6", str(corpus)],
                    {"metric": "cpu"})]


def lz4_commands(work: Path, root: Path) -> list[Command]:
    corpus = text_corpus(work)
    zstd = shutil.which("zstd") or "/usr/bin/zstd"
    packed = work / "corpus.lz4"
    if not packed.exists():
        sh([zstd, "-q", "-f", "--format=lz4", str(corpus), "-o", str(packed)])
    return [
        Command("zstd --format=lz4 -c corpus (liblz4 compress)",
                [zstd, "-q", "--format=lz4", "-c", str(corpus)], {"metric": "cpu"}),
        Command("zstd -d corpus.lz4 (liblz4 decompress)",
                [zstd, "-q", "-d", "-c", str(packed)], {"metric": "cpu"}),
    ]


PACKAGES = {
    "vecmath": Package("vecmath", lambda _w: REPO / "examples/vecmath", vecmath_commands),
    # Debian builds libxxhash with DISPATCH=1, whose xxh_x86dispatch.c has an #error under
    # -mavx unless XXH_X86DISPATCH_ALLOW_AVX is defined (the dispatcher's exported symbols
    # must stay); if the build still fails, the library alone is compiled per level
    "xxhash": Package("xxhash", corpus_dsc("xxhash"), xxhash_commands,
                      build_args=("--variant-env",
                                  "DEB_CPPFLAGS_APPEND=-DXXH_X86DISPATCH_ALLOW_AVX"),
                      direct=("libxxhash.so.0.8.1", "libxxhash.so.0.8.1", "libxxhash.so.0")),
    "zlib": Package("zlib", corpus_dsc("zlib"), zlib_commands),
    "lz4": Package("lz4", corpus_dsc("lz4"), lz4_commands),
}


# -- running and reporting -----------------------------------------------------------


def rows(package: str, command: Command, report: BenchReport) -> list[list[str]]:
    result = []
    for v in report.variants:
        if v.level == "baseline":
            continue
        iv = v.interval
        result.append([
            package, command.label, v.level,
            f"{iv.point:.2f}x" if iv else "-",
            f"[{iv.low:.2f}, {iv.high:.2f}]" if iv else "-",
            f"{v.added_bytes / 1024:.0f} KiB",
            v.verdict if iv else f"{v.verdict} ({v.reason})",
        ])
    return result


def print_table(table: list[list[str]], markdown: bool) -> None:
    header = ["package", "command", "variant", "speedup", "95% interval", "added size", "verdict"]
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for row in table:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--min-speedup", type=float, default=1.03)
    parser.add_argument("--only", nargs="*", choices=sorted(PACKAGES), default=sorted(PACKAGES))
    parser.add_argument("--work", type=Path,
                        default=Path(os.environ.get("HWCAPDEB_BENCH_DIR",
                                                    Path.home() / ".cache/hwcapdeb/bench")))
    parser.add_argument("--markdown", action="store_true", help="print the README table")
    args = parser.parse_args()
    table: list[list[str]] = []
    for name in args.only:
        pkg = PACKAGES[name]
        work = args.work / name
        work.mkdir(parents=True, exist_ok=True)
        try:
            try:
                changes = build(pkg, work)
                target: Path = changes
                root = unpack(changes, work)
            except subprocess.CalledProcessError:
                if pkg.direct is None:
                    raise
                print(f"== {name}: hwcapdeb build failed, compiling the library directly",
                      file=sys.stderr)
                root = target = direct_tree(pkg, work)
            for command in pkg.commands(work, root):
                options = BenchOptions(rounds=args.rounds, min_speedup=args.min_speedup,
                                       **command.options)  # type: ignore[arg-type]
                print(f"== {name}: {command.label}", file=sys.stderr)
                report = run_bench([target], command.argv, options)
                table.extend(rows(name, command, report))
        except (HwcapdebError, subprocess.CalledProcessError) as err:
            table.append([name, "-", "-", "-", "-", "-", f"could not run: {err}"])
    print_table(table, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
