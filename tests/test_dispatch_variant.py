"""Regression: a library with per-ISA object files behind a cpuid dispatcher, built as
the x86-64-v2 variant, is judged clean (it was `E: unsafe-resolution`, "needs AVX
without a run-time check", while its baseline was clean), and it really runs on a v2
CPU (qemu-x86_64 -cpu Nehalem) from glibc-hwcaps/x86-64-v2."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.debfile import PackageTree
from hwcapdeb.isa_audit import audit
from hwcapdeb.profiles import architecture
from hwcapdeb.verify import verify_trees

SONAME = "libdisp.so.1"
LIBDIR = "usr/lib/x86_64-linux-gnu"
#: the dispatcher: asks the CPU once, then calls through a pointer (no ISA names anywhere)
DISPATCH_C = r"""
#include <stddef.h>
float wide_a(const float *a, size_t n);
float wide_b(const float *a, size_t n);
float narrow(const float *a, size_t n);
typedef float (*kernel)(const float *, size_t);
static kernel pick(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("xop")) return wide_b;
    if (__builtin_cpu_supports("avx")) return wide_a;
    return narrow;
}
float hw_sum(const float *a, size_t n) {
    static kernel fn;
    if (!fn) fn = pick();
    return fn(a, n);
}
"""
KERNEL_C = """#include <stddef.h>
float NAME(const float *a, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * a[i];
    return s;
}
"""
#: object file -> its own ISA flags (added to the build's -march), like such packages do
OBJECTS = {"wide_a": ["-mavx"], "wide_b": ["-mxop"], "narrow": []}
MAIN_C = r"""
#include <stdio.h>
#include <stddef.h>
float hw_sum(const float *a, size_t n);
int main(void) {
    float a[64];
    for (int i = 0; i < 64; i++) a[i] = (float)i;
    printf("%.0f\n", hw_sum(a, 64));
    return 0;
}
"""


def build_library(out: Path, march: str) -> Path:
    """Per-ISA objects compiled separately with -g, linked into one shared library."""
    work = out.parent / f".{out.name}.objs"
    work.mkdir(parents=True, exist_ok=True)
    objects = []
    for name, flags in {**OBJECTS, "dispatch": []}.items():
        src = work / f"{name}.c"
        src.write_text(DISPATCH_C if name == "dispatch" else KERNEL_C.replace("NAME", name))
        obj = work / f"{name}.o"
        subprocess.run(["gcc", "-O3", "-g", "-fPIC", "-c", f"-march={march}", *flags,
                        "-o", str(obj), str(src)], check=True)
        objects.append(str(obj))
    subprocess.run(["gcc", "-shared", f"-Wl,-soname,{SONAME}", "-o", str(out), *objects],
                   check=True)
    shutil.rmtree(work)
    return out


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dispatch") / "root"
    libdir = root / LIBDIR
    variant = libdir / "glibc-hwcaps" / "x86-64-v2"
    variant.mkdir(parents=True)
    build_library(libdir / "libdisp.so.1.0.0", "x86-64")
    build_library(variant / "libdisp.so.1.0.0", "x86-64-v2")
    for directory in (libdir, variant):
        os.symlink("libdisp.so.1.0.0", directory / SONAME)
    return root


def test_the_per_isa_units_are_dispatched_not_leaked(tree: Path) -> None:
    variant = audit(tree / LIBDIR / "glibc-hwcaps/x86-64-v2" / SONAME)
    assert variant.build_rank == 1  # every unit assumed x86-64-v2: the DWARF rule applies
    judged = {f.function: f for f in variant.findings(0)}
    assert {"wide_a", "wide_b"} <= judged.keys()  # AVX code is there...
    assert judged["wide_a"].dispatched and judged["wide_b"].dispatched  # ...behind the check
    assert "AVX" not in variant.unguarded_features(0)
    assert variant.leaks(1) == []


def test_verify_judges_the_v2_variant_as_its_baseline(tree: Path) -> None:
    report = verify_trees([PackageTree("libdisp1", tree, tree)],
                          cpus=["x86_64", "nehalem", "haswell"], ask_real_loader=False)
    errors = [f for f in report.findings if f.severity == "error"]
    assert errors == [], errors
    nehalem = [c for c in report.matrix if c.cpu == "nehalem"]
    assert nehalem and all(c.safe and c.level == "x86-64-v2" for c in nehalem), nehalem


@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-x86_64") is None, reason="needs qemu-user")
def test_the_v2_variant_runs_on_nehalem(tree: Path, tmp_path: Path) -> None:
    loader = architecture("amd64").loader
    assert loader and os.path.exists(loader)
    src = tmp_path / "main.c"
    src.write_text(MAIN_C)
    prog = tmp_path / "main"
    libdir = tree / LIBDIR
    subprocess.run(["gcc", "-o", str(prog), str(src), str(libdir / SONAME)], check=True)
    base = ["qemu-x86_64", "-cpu", "Nehalem", loader, "--library-path", str(libdir)]
    listed = subprocess.run([*base, "--list", str(prog)], capture_output=True, text=True,
                            check=True).stdout
    assert f"{libdir}/glibc-hwcaps/x86-64-v2/{SONAME}" in listed
    ran = subprocess.run([*base, str(prog)], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == str(sum(i * i for i in range(64)))
