"""Each check of ``hwcapdeb verify`` alone: a function over the model returning findings.

The builds are real libraries compiled by gcc (tests/elfbuild.py) and read with
hwcapdeb.elf, but no package, no .deb and no loader: one check, its exact
findings.  tests/test_verify.py runs the same checks end to end on real .debs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from hwcapdeb.debfile import PackageTree
from hwcapdeb.elf import read_elf
from hwcapdeb.findings import Finding
from hwcapdeb.isa_audit import audit
from hwcapdeb.library import (
    Library,
    LibraryFile,
    collect_libraries,
    junk_files,
    links_to_non_elf,
    soname_link,
    unknown_directory,
)
from hwcapdeb.profiles import architecture
from hwcapdeb.sbuild.rc import rc_finding
from hwcapdeb.target_loader import HOST, TargetLoader
from hwcapdeb.verify.checks import (
    check_abi,
    check_adds_nothing,
    check_isa_leak,
    check_library,
    check_marker,
    check_matrix,
    check_target_loader,
    check_without_baseline,
)
from hwcapdeb.verify.matrix import Cell
from tests.elfbuild import compile_library, install_variant_tree

AMD64 = architecture("amd64")
PKG = "libhwtest1"
LIBDIR = "usr/lib/x86_64-linux-gnu"


def build_of(root: Path, level: str, *, cflags: Sequence[str] | None = None,
             extra_source: str = "", audited: bool = False) -> LibraryFile:
    """A real build of libhwtest.so.1 at ``level``, as the collector would model it."""
    rel = (f"{LIBDIR}/libhwtest.so.1.0.0" if level == "baseline"
           else f"{LIBDIR}/glibc-hwcaps/{level}/libhwtest.so.1.0.0")
    file = compile_library(root / rel, variant=level, cflags=cflags, extra_source=extra_source)
    build = LibraryFile(PKG, AMD64.level(level), file, rel, read_elf(file),
                        file.stat().st_size)
    if audited:
        build.audit = audit(file, arch_name="amd64")
    return build


def test_abi_same_exports_is_clean_and_an_extra_symbol_is_named(tmp_path: Path) -> None:
    base = build_of(tmp_path, "baseline")
    assert check_abi(base, build_of(tmp_path, "x86-64-v2")) == []
    extra = build_of(tmp_path, "x86-64-v3", extra_source="int hw_only_here(void) { return 3; }\n")
    assert check_abi(base, extra) == [Finding(
        "error", "abi-mismatch", PKG, extra.relpath,
        "exports hw_only_here, which the baseline does not")]
    # the other way round: the baseline exports what the variant lacks
    assert check_abi(extra, base)[0].message == "lacks hw_only_here, exported by the baseline"


def test_marker_of_each_kind(tmp_path: Path) -> None:
    assert check_marker(AMD64, build_of(tmp_path, "x86-64-v3")) == []
    unmarked = build_of(tmp_path / "a", "x86-64-v3", cflags=["-march=x86-64-v3"])
    assert check_marker(AMD64, unmarked) == [Finding(
        "warning", "isa-marker-mismatch", PKG, unmarked.relpath,
        "no ISA marker: the x86-64-v3 flags may not have reached the compiler (link with "
        "-Wl,-z,x86-64-v3, as hwcapdeb's profiles do)")]
    above = build_of(tmp_path / "b", "x86-64-v3",
                     cflags=["-march=x86-64-v3", "-Wl,-z,x86-64-v4"])
    (finding,) = check_marker(AMD64, above)
    assert (finding.severity, finding.tag) == ("error", "isa-marker-mismatch")
    assert finding.message.startswith("ISA marker needs x86-64-v4, above glibc-hwcaps/x86-64-v3")
    below = build_of(tmp_path / "c", "x86-64-v3", cflags=["-march=x86-64-v3", "-Wl,-z,x86-64-v2"])
    assert [f.severity for f in check_marker(AMD64, below)] == ["warning"]
    base = build_of(tmp_path / "d", "baseline", cflags=["-march=x86-64", "-Wl,-z,x86-64-v2"])
    assert check_marker(AMD64, base) == [Finding(
        "error", "isa-marker-mismatch", PKG, base.relpath,
        "the baseline's ISA marker needs x86-64-v2: glibc refuses to load it on baseline CPUs")]
    # an architecture without the marker has nothing to check
    assert check_marker(architecture("arm64"), above) == []


def test_isa_leak_needs_the_audit(tmp_path: Path) -> None:
    leaky = build_of(tmp_path, "baseline", cflags=["-march=x86-64-v3"])
    assert check_isa_leak(AMD64, leaky) == []  # not audited: nothing to say
    leaky.audit = audit(leaky.file, arch_name="amd64")
    (finding,) = check_isa_leak(AMD64, leaky)
    assert (finding.severity, finding.tag, finding.path) == ("error", "isa-leak", leaky.relpath)
    assert " in hw_" in finding.message and "above baseline" in finding.message
    assert check_isa_leak(AMD64, build_of(tmp_path / "v3", "x86-64-v3", audited=True)) == []


def test_adds_nothing_compares_with_the_next_lower_build(tmp_path: Path) -> None:
    base = build_of(tmp_path, "baseline", audited=True)
    same = build_of(tmp_path, "x86-64-v3", cflags=["-march=x86-64", "-Wl,-z,x86-64-v3"],
                    audited=True)
    lib = Library("libhwtest.so.1", LIBDIR, base, {"x86-64-v3": same})
    assert check_adds_nothing(AMD64, lib) == [Finding(
        "warning", "variant-adds-nothing", PKG, same.relpath,
        f"its code is identical to {base.relpath}: {same.size} bytes of pure bloat")]
    real = build_of(tmp_path / "r", "x86-64-v3", audited=True)
    assert check_adds_nothing(AMD64, Library("libhwtest.so.1", LIBDIR, base,
                                             {"x86-64-v3": real})) == []


def test_variant_without_baseline_and_the_whole_library(tmp_path: Path) -> None:
    v2, v3 = build_of(tmp_path, "x86-64-v2"), build_of(tmp_path, "x86-64-v3")
    orphan = Library("libhwtest.so.1", LIBDIR, None, {"x86-64-v2": v2, "x86-64-v3": v3})
    assert check_without_baseline(orphan) == [
        Finding("error", "variant-without-baseline", PKG, b.relpath,
                f"no baseline libhwtest.so.1 in {LIBDIR}: CPUs below {b.level.name} cannot "
                "load the library at all") for b in (v2, v3)]
    assert check_library(AMD64, orphan) == check_without_baseline(orphan)
    whole = Library("libhwtest.so.1", LIBDIR, build_of(tmp_path, "baseline"), {"x86-64-v2": v2})
    assert check_library(AMD64, whole) == []


def _cell(cpu: str, resolved: str | None, **kw: object) -> Cell:
    fields: dict = {"level": "x86-64-v3", "safe": True, "reason": "fine", **kw}
    return Cell(cpu, "libhwtest.so.1", PKG, resolved, **fields)


def test_matrix_findings_are_named_once_and_not_twice() -> None:
    v3 = f"{LIBDIR}/glibc-hwcaps/x86-64-v3/libhwtest.so.1.0.0"
    unsafe = [_cell(cpu, v3, safe=False, reason="its code needs AVX2 without a run-time check")
              for cpu in ("nehalem", "x86_64")]
    assert check_matrix(unsafe, [], None) == [Finding(
        "error", "unsafe-resolution", PKG, v3,
        "on nehalem the loader picks this file, but its code needs AVX2 without a run-time "
        "check")]
    leak = Finding("error", "isa-leak", PKG, v3, "vfmadd in hw_dot")
    assert check_matrix(unsafe, [leak], None) == []  # the leak already says it
    refused = [_cell(cpu, None, level=None, safe=False, reason="invalid ELF header", refused=v3)
               for cpu in ("haswell", "zen4")]
    (finding,) = check_matrix(refused, [], None)
    assert (finding.tag, finding.path) == ("unloadable-variant", v3)
    link = Finding("error", "missing-soname-link", PKG, v3, "dangling")
    assert check_matrix(refused, [link], None) == []  # its directory's finding says why


def test_matrix_disagreement_and_legacy_copy() -> None:
    legacy = f"{LIBDIR}/x86_64/libhwtest.so.1.0.0"
    cells = [_cell("host", legacy, level="legacy x86_64/", real="error: version "
                   "`GLIBC_2.99' not found", agrees=False)]
    assert check_matrix(cells, [], None) == [
        Finding("warning", "legacy-hwcaps-directory", PKG, legacy,
                "on host glibc <= 2.36 loads this legacy x86_64/ copy; glibc >= 2.37 never "
                "searches there"),
        Finding("error", "loader-disagrees", PKG, legacy,
                f"on host the real loader picks error: version `GLIBC_2.99' not found but the "
                f"model says {legacy}; the library needs a newer glibc than this loader's: "
                "pass --loader-root with a root or chroot tarball of the target release"),
    ]


def test_target_loader_unavailable(tmp_path: Path) -> None:
    lib = Library("libhwtest.so.1", LIBDIR, build_of(tmp_path, "baseline"))
    assert check_target_loader([lib], None) == []
    host = TargetLoader(Path("/lib64/ld-linux-x86-64.so.2"), Path("/"), Path("/lib"), "2.36",
                        HOST, "the host's", warning="no libc6 2.41 could be fetched")
    assert check_target_loader([lib], host) == [Finding(
        "warning", "target-loader-unavailable", PKG, "libhwtest.so.1",
        "no libc6 2.41 could be fetched")]


def test_layout_checks_of_one_level_directory(tmp_path: Path) -> None:
    tree = PackageTree(PKG, tmp_path, tmp_path)
    libdir = tmp_path / LIBDIR
    install_variant_tree(libdir, levels=("x86-64-v3",), soname_links=False)
    sub = libdir / "glibc-hwcaps/x86-64-v3"
    (sub / "README").write_text("not a library\n")
    (sub / "libjunk.so").write_text("INPUT(-lfoo)\n")
    (libdir / "notes.so.txt").write_text("hello\n")
    os.symlink("../../notes.so.txt", sub / "extra.so")
    assert [(f.severity, f.path.rsplit("/", 1)[1]) for f in junk_files(tree, sub)] == [
        ("warning", "README"), ("error", "libjunk.so")]
    assert links_to_non_elf(tree, sub) == [Finding(
        "error", "unloadable-variant", PKG, f"{LIBDIR}/glibc-hwcaps/x86-64-v3/extra.so",
        "links to ../../notes.so.txt, which is no ELF object: the loader picks it on every "
        "CPU of x86-64-v3 and fails (fatal)")]
    build = build_of(tmp_path, "x86-64-v3")
    assert [f.message for f in soname_link(tree, sub, build, "libhwtest.so.1")] == [
        "glibc-hwcaps/x86-64-v3 has no libhwtest.so.1: the loader looks up the SONAME and "
        "never uses this variant"]
    os.symlink("libhwtest.so.1.0.0", sub / "libhwtest.so.1")
    assert soname_link(tree, sub, build, "libhwtest.so.1") == []
    haswell = libdir / "glibc-hwcaps/haswell"
    haswell.mkdir()
    assert unknown_directory(AMD64, tree, haswell) == Finding(
        "warning", "unknown-hwcaps-directory", PKG, f"{LIBDIR}/glibc-hwcaps/haswell",
        "glibc on amd64 searches only x86-64-v4, x86-64-v3, x86-64-v2")
    # the whole walk: one library, the same findings
    libraries, findings = collect_libraries(AMD64, [tree])
    assert [(lib.soname, sorted(lib.variants)) for lib in libraries] == [
        ("libhwtest.so.1", ["x86-64-v3"])]
    assert {f.tag for f in findings} == {"unknown-hwcaps-directory", "unreadable-file",
                                         "unloadable-variant"}


@pytest.mark.parametrize("subject", [None, "/home/me/.sbuildrc"])
def test_sbuildrc_finding_line(subject: str | None) -> None:
    finding = rc_finding("no-verify-hook", "no 'hwcapdeb verify %SBUILD_CHANGES'")
    assert finding.severity == "error" and finding.package == "sbuildrc"
    assert finding.file_line(subject) == (
        f"E: {subject or 'sbuildrc'}: no-verify-hook no 'hwcapdeb verify %SBUILD_CHANGES'")
