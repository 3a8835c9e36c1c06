"""Fuzz the readers: truncated and bit-flipped real ELF files and .debs.

Whatever the bytes, the outcome is a result, a finding, or a HwcapdebError
(one line, exit 2): never another exception.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwcapdeb.debfile import PackageTree, changes_packages, unpack_deb
from hwcapdeb.elf import read_elf
from hwcapdeb.elf_code import read_code
from hwcapdeb.errors import HwcapdebError
from hwcapdeb.isa_audit import audit
from hwcapdeb.verify import verify_trees
from tests.elfbuild import compile_library, install_variant_tree

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def elf_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    lib = compile_library(tmp_path_factory.mktemp("elf") / "libf.so", variant="x86-64-v3",
                          cflags=["-march=x86-64-v3", "-mneeded", "-g"])
    return lib.read_bytes()


@pytest.fixture(scope="module")
def deb_bytes(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    tmp = tmp_path_factory.mktemp("deb")
    staging = tmp / "staging"
    install_variant_tree(staging / "usr/lib/x86_64-linux-gnu", levels=("x86-64-v3",))
    (staging / "DEBIAN").mkdir()
    (staging / "DEBIAN/control").write_text(
        "Package: libf1\nVersion: 1\nArchitecture: amd64\nMaintainer: T <t@example.org>\n"
        "Description: fuzz\n")
    deb = tmp / "libf1_1_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(staging), str(deb)],
                   check=True, capture_output=True)
    return deb.read_bytes()


def mutate(data: bytes, cut: int | None, flips: list[tuple[int, int]]) -> bytes:
    buf = bytearray(data if cut is None else data[: cut % (len(data) + 1)])
    for offset, bit in flips:
        if buf:
            buf[offset % len(buf)] ^= 1 << bit
    return bytes(buf)


MUTATIONS = dict(
    cut=st.one_of(st.none(), st.integers(min_value=0, max_value=1 << 20)),
    flips=st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 7)), max_size=8),
)


@FUZZ
@given(**MUTATIONS)
def test_elf_readers_never_crash(
    tmp_path: Path, elf_bytes: bytes, cut: int | None, flips: list[tuple[int, int]]
) -> None:
    path = tmp_path / "libf.so"
    path.write_bytes(mutate(elf_bytes, cut, flips))
    for reader in (read_elf, read_code, audit):
        try:
            reader(path)
        except HwcapdebError as err:
            assert "\n" not in str(err)


@FUZZ
@given(**MUTATIONS)
def test_verify_reports_a_broken_variant(
    tmp_path: Path, elf_bytes: bytes, cut: int | None, flips: list[tuple[int, int]]
) -> None:
    root = tmp_path / "tree"
    libdir = root / "usr/lib/x86_64-linux-gnu"
    variant = libdir / "glibc-hwcaps/x86-64-v3"
    variant.mkdir(parents=True, exist_ok=True)
    (libdir / "libhwtest.so.1").unlink(missing_ok=True)
    (libdir / "libhwtest.so.1").write_bytes(elf_bytes)
    (variant / "libhwtest.so.1").write_bytes(mutate(elf_bytes, cut, flips))
    tree = PackageTree("libf1", root, root)
    try:
        report = verify_trees([tree], cpus=["x86_64", "haswell"], ask_real_loader=False)
    except HwcapdebError as err:
        assert "\n" not in str(err)
        return
    assert all(f.message and "\n" not in f.message for f in report.findings)


@FUZZ
@given(**MUTATIONS)
def test_deb_reader_never_crashes(
    tmp_path: Path, deb_bytes: bytes, cut: int | None, flips: list[tuple[int, int]]
) -> None:
    deb = tmp_path / "libf1_1_amd64.deb"
    deb.write_bytes(mutate(deb_bytes, cut, flips))
    out = tmp_path / "out"
    try:
        tree = unpack_deb(deb, out)
    except HwcapdebError as err:
        assert "\n" not in str(err)
        return
    assert tree.root.is_dir() and os.path.commonpath([tree.root, out]) == str(out)


@FUZZ
@given(text=st.text(max_size=400), files=st.lists(st.text(max_size=40), max_size=4))
def test_changes_reader_never_crashes(tmp_path: Path, text: str, files: list[str]) -> None:
    changes = tmp_path / "x_1_amd64.changes"
    body = "Files:\n" + "".join(f" {f}\n" for f in files) if files else ""
    changes.write_text(text + "\n" + body, encoding="utf-8", errors="replace")
    try:
        changes_packages(changes)
    except HwcapdebError as err:
        assert "\n" not in str(err)
