"""verify reports a layout the loader picks and then refuses (fatal, no fallback) as an
error with exit status 1: a glibc-hwcaps SONAME link to something that is no library,
a PIE executable in place of a variant."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.cpu_sources import cpu_model
from hwcapdeb.debfile import PackageTree
from hwcapdeb.loader import resolve
from hwcapdeb.probe import probe
from hwcapdeb.verify import verify_trees
from tests.elfbuild import install_variant_tree

SONAME = "libhwtest.so.1"
LIBDIR = "usr/lib/x86_64-linux-gnu"


def _tree(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    libdir = root / LIBDIR
    install_variant_tree(libdir, soname=SONAME, levels=("x86-64-v2",))
    return root, libdir


def test_link_to_a_non_library_is_an_error(tmp_path: Path) -> None:
    root, libdir = _tree(tmp_path)
    v2 = libdir / "glibc-hwcaps/x86-64-v2"
    doc = root / "usr/share/doc/libhwtest1/README"
    doc.parent.mkdir(parents=True)
    doc.write_text("not a library\n")
    (v2 / SONAME).unlink()
    os.symlink(os.path.relpath(doc, v2), v2 / SONAME)
    report = verify_trees([PackageTree("libhwtest1", root, root)], cpus=["nehalem"],
                          ask_real_loader=False)
    tags = {(f.tag, f.path) for f in report.errors}
    assert ("unloadable-variant", f"{LIBDIR}/glibc-hwcaps/x86-64-v2/{SONAME}") in tags, tags
    assert report.exit_code == 1
    (cell,) = report.matrix
    assert cell.resolved is None and not cell.safe
    # and the real loader agrees that it fails
    real = probe(SONAME, library_path=[libdir], qemu_cpu="Nehalem") \
        if os.path.exists("/usr/bin/qemu-x86_64") else None
    if real is not None:
        assert real.path is None and real.error


def test_pie_executable_as_variant_is_an_error(tmp_path: Path) -> None:
    root, libdir = _tree(tmp_path)
    v2 = libdir / "glibc-hwcaps/x86-64-v2"
    src = tmp_path / "main.c"
    src.write_text("int main(void) { return 0; }\n")
    target = v2 / "libhwtest.so.1.0.0"
    target.unlink()
    subprocess.run(["gcc", "-pie", "-fPIE", f"-Wl,-soname,{SONAME}", "-o", str(target),
                    str(src)], check=True)
    res = resolve(SONAME, cpu_model("nehalem"), library_path=[libdir], system=False)
    assert res.path is None and res.error and "position-independent executable" in res.error
    report = verify_trees([PackageTree("libhwtest1", root, root)], cpus=["nehalem", "x86_64"],
                          ask_real_loader=False)
    assert any(f.tag == "unloadable-variant" for f in report.errors), report.findings
    assert report.exit_code == 1


@pytest.mark.skipif(not os.path.exists("/usr/bin/qemu-x86_64"), reason="needs qemu-user")
def test_pie_is_refused_by_the_real_loader_too(tmp_path: Path) -> None:
    _, libdir = _tree(tmp_path)
    target = libdir / "glibc-hwcaps/x86-64-v2/libhwtest.so.1.0.0"
    src = tmp_path / "main.c"
    src.write_text("int main(void) { return 0; }\n")
    target.unlink()
    subprocess.run(["gcc", "-pie", "-fPIE", "-o", str(target), str(src)], check=True)
    real = probe(SONAME, library_path=[libdir], qemu_cpu="Nehalem")
    assert real.path is None and "position-independent" in (real.error or ""), real


def _needing(tmp_path: Path, levels_needing: tuple[str, ...]) -> Path:
    """A tree whose builds at ``levels_needing`` need libgone.so.3, which is nowhere."""
    from tests.elfbuild import compile_library

    gone = compile_library(tmp_path / "libgone.so.3", soname="libgone.so.3")
    flags = {"baseline": ["-march=x86-64"], "x86-64-v2": ["-march=x86-64-v2", "-mneeded"]}
    root = tmp_path / "root"
    install_variant_tree(root / LIBDIR, soname=SONAME, levels=("x86-64-v2",), flags_for={
        level: [*flags[level], "-Wl,--no-as-needed", str(gone)] for level in levels_needing})
    gone.unlink()
    return root


def test_a_dependency_only_the_variant_needs_is_an_error(tmp_path: Path) -> None:
    root = _needing(tmp_path, ("x86-64-v2",))
    report = verify_trees([PackageTree("libhwtest1", root, root)], cpus=["nehalem", "x86_64"],
                          ask_real_loader=False)
    (finding,) = [f for f in report.errors if f.tag == "unloadable-variant"]
    assert "libgone.so.3" in finding.message and "x86-64-v2" in finding.path


def test_a_dependency_missing_on_this_machine_is_no_finding(tmp_path: Path) -> None:
    root = _needing(tmp_path, ("baseline", "x86-64-v2"))
    report = verify_trees([PackageTree("libhwtest1", root, root)], cpus=["nehalem", "host"])
    assert not [f for f in report.errors if f.tag in ("unloadable-variant", "loader-disagrees")]
    assert all(c.resolved is None and "libgone.so.3" in c.reason for c in report.matrix)
    host = [c for c in report.matrix if c.cpu == "host"]
    assert host and all(c.agrees is True for c in host), host
