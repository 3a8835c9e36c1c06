"""examples/vecmath itself: its Makefile, tests and benchmark, built per level with gcc.

(The Debian build of the converted example is in tests/test_convert_build.py.)
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.elf import read_elf
from hwcapdeb.profiles import architecture

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vecmath"
LOADER = architecture("amd64").loader or "/lib64/ld-linux-x86-64.so.2"

pytestmark = pytest.mark.skipif(
    subprocess.run(["uname", "-m"], capture_output=True, text=True).stdout.strip() != "x86_64",
    reason="x86-64 levels",
)


def supported(level: str) -> bool:
    out = subprocess.run([LOADER, "--help"], capture_output=True, text=True).stdout
    return bool(re.search(rf"^\s+{level} \(supported", out, re.M))


def make(tree: Path, *args: str, cflags: str = "-O2 -g") -> str:
    done = subprocess.run(
        ["make", "-s", f"CFLAGS={cflags}", *args], cwd=tree, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize(
    ("level", "register"),
    [("baseline", None), ("x86-64-v2", None), ("x86-64-v3", "ymm"), ("x86-64-v4", "zmm")],
)
def test_kernels_per_level(tmp_path: Path, level: str, register: str | None) -> None:
    if level != "baseline" and not supported(level):
        pytest.skip(f"this CPU does not run {level}")
    tree = tmp_path / "vecmath"
    shutil.copytree(EXAMPLE, tree, ignore=shutil.ignore_patterns("debian"))
    flags = "-O2 -g" if level == "baseline" else f"-O2 -g -march={level} -mneeded"
    out = make(tree, "all", "check", cflags=flags)
    assert f"vecmath tests (library built for {level}): all passed" in out
    lib = tree / "libvecmath.so.1.0.0"
    facts = read_elf(lib)
    assert facts.soname == "libvecmath.so.1"
    assert {s.name for s in facts.exports} >= {"vm_dot", "vm_saxpy", "vm_sum", "vm_build_level"}
    if level != "baseline":
        assert facts.isa_needed == architecture("amd64").level(level).marker_bits
    # the compiler really vectorized the dot product for the level
    dis = subprocess.run(
        ["objdump", "-d", "--no-show-raw-insn", lib], capture_output=True, text=True, check=True
    ).stdout
    body = dis.split("<vm_dot>:", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"\b(mulps|vfmadd\w*ps|vmulps)\b", body), body[:400]
    # wider at each level: xmm (baseline, v2), ymm (v3), zmm (v4: omp simd asks for it)
    widest = "zmm" if "%zmm" in body else "ymm" if "%ymm" in body else None
    assert widest == register
    bench = subprocess.run(
        [LOADER, "--library-path", tree, tree / "vecmath-bench", "2048"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert re.match(
        rf"vecmath-bench: level={level} n=2048 passes=\d+ dot=[\d.]+ saxpy=[\d.]+ sum=[\d.]+ "
        r"ns/element total=[\d.]+ s$",
        bench.strip(),
    )


def test_bench_rejects_bad_size(tmp_path: Path) -> None:
    tree = tmp_path / "vecmath"
    shutil.copytree(EXAMPLE, tree, ignore=shutil.ignore_patterns("debian"))
    make(tree)
    done = subprocess.run(
        [LOADER, "--library-path", tree, tree / "vecmath-bench", "0"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2 and "usage: vecmath-bench [N]" in done.stderr


def test_install_layout(tmp_path: Path) -> None:
    tree = tmp_path / "vecmath"
    shutil.copytree(EXAMPLE, tree, ignore=shutil.ignore_patterns("debian"))
    dest = tmp_path / "dest"
    make(tree, "install", f"DESTDIR={dest}", "prefix=/usr", "libdir=/usr/lib/x86_64-linux-gnu")
    libdir = dest / "usr/lib/x86_64-linux-gnu"
    assert (libdir / "libvecmath.so.1").resolve().name == "libvecmath.so.1.0.0"
    assert (libdir / "libvecmath.so").is_symlink()
    assert (libdir / "libvecmath.a").is_file()
    assert "libdir=/usr/lib/x86_64-linux-gnu" in (libdir / "pkgconfig/vecmath.pc").read_text()
    assert (dest / "usr/bin/vecmath-bench").is_file()
    assert (dest / "usr/include/vecmath.h").is_file()
