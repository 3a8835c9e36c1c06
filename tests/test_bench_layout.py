"""hwcapdeb.bench.layout: what bench expects the loader to map, from the shared library model.

The trees are compiled with gcc (tests/elfbuild.py); nothing runs here, the
loader itself is asked in tests/test_bench.py.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from hwcapdeb.bench.layout import discover
from hwcapdeb.debfile import directory_tree
from hwcapdeb.profiles import BASELINE, architecture
from tests.elfbuild import compile_library, install_variant_tree

LIBDIR = "usr/lib/x86_64-linux-gnu"
SONAME = "libhwtest.so.1"

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")


def test_inline_layout(tmp_path: Path) -> None:
    root = tmp_path / "libhwtest1"
    files = install_variant_tree(root / LIBDIR, levels=("x86-64-v3", "x86-64-v4"))
    lib = (root / LIBDIR).resolve()
    # a real file with no SONAME link: the loader never opens it, so no variant
    compile_library(lib / "glibc-hwcaps/x86-64-v2/libhwtest.so.1.0.0", variant="x86-64-v2")
    # a directory name glibc does not search on amd64
    compile_library(lib / "glibc-hwcaps/haswell/libhwtest.so.1.0.0", variant="x86-64-v3")
    layout = discover([directory_tree(root)], architecture("amd64"))
    assert layout.levels == ["x86-64-v3", "x86-64-v4"]
    assert layout.expected(BASELINE) == {SONAME: lib / SONAME}
    assert layout.expected("x86-64-v3") == {SONAME: lib / "glibc-hwcaps/x86-64-v3" / SONAME}
    assert layout.variant_files("x86-64-v4") == {SONAME: lib / "glibc-hwcaps/x86-64-v4" / SONAME}
    assert layout.variant_files(BASELINE) == {}
    assert layout.libdirs[0] == lib
    assert layout.added_bytes("x86-64-v3") == files["x86-64-v3"].stat().st_size
    assert layout.ignored == [f"{lib}/glibc-hwcaps/haswell: not a glibc-hwcaps name of amd64"]


def test_split_layout_finds_the_baseline_in_its_own_package(tmp_path: Path) -> None:
    """One package per level (build --layout split): the baseline is another package's."""
    base, v3 = tmp_path / "libhwtest1", tmp_path / "libhwtest1-x86-64-v3"
    install_variant_tree(base / LIBDIR, levels=())
    install_variant_tree(v3 / LIBDIR, levels=("x86-64-v3",))
    for name in os.listdir(v3 / LIBDIR):  # the variant package ships only glibc-hwcaps/
        if name != "glibc-hwcaps":
            (v3 / LIBDIR / name).unlink()
    layout = discover([directory_tree(base), directory_tree(v3)], architecture("amd64"))
    base_lib, v3_lib = (base / LIBDIR).resolve(), (v3 / LIBDIR).resolve()
    assert layout.expected(BASELINE) == {SONAME: base_lib / SONAME}
    assert layout.expected("x86-64-v3") == {SONAME: v3_lib / "glibc-hwcaps/x86-64-v3" / SONAME}
    assert layout.ignored == []
    assert {v3_lib, base_lib} <= set(layout.libdirs)


def test_variant_without_baseline_is_noted(tmp_path: Path) -> None:
    root = tmp_path / "pkg"
    install_variant_tree(root / LIBDIR, levels=("x86-64-v3",))
    for name in ("libhwtest.so.1", "libhwtest.so.1.0.0"):
        (root / LIBDIR / name).unlink()
    layout = discover([directory_tree(root)], architecture("amd64"))
    lib = (root / LIBDIR).resolve()
    assert layout.levels == ["x86-64-v3"]
    assert layout.expected(BASELINE) == {}
    assert layout.ignored == [f"{lib}/glibc-hwcaps/x86-64-v3/{SONAME}: no baseline {lib}/{SONAME}"]


def test_baseline_link_out_of_the_package_is_not_its_baseline(tmp_path: Path) -> None:
    """An absolute SONAME link would make bench time the host's copy as the baseline."""
    root = tmp_path / "pkg"
    install_variant_tree(root / LIBDIR, levels=("x86-64-v3",))
    elsewhere = compile_library(tmp_path / "host/libhwtest.so.1.0.0")
    (root / LIBDIR / SONAME).unlink()
    (root / LIBDIR / SONAME).symlink_to(elsewhere)
    layout = discover([directory_tree(root)], architecture("amd64"))
    assert layout.expected(BASELINE) == {}
    assert "no baseline" in layout.ignored[0]
