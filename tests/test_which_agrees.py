"""``hwcapdeb which`` on the cases issue 12 found: every "agrees" comes from the real
loader given the same inputs, and bad values are one-line errors with exit 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.cpu_sources import cpu_model
from hwcapdeb.loader import resolve
from hwcapdeb.probe import probe
from tests.elfbuild import install_variant_tree
from tests.test_which_cli import run

SONAME = "libhwtest.so.1"
AMD64_LOADER = "/lib64/ld-linux-x86-64.so.2"
needs_loader = pytest.mark.skipif(not os.path.exists(AMD64_LOADER), reason="amd64 only")




@pytest.fixture(scope="module")
def lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("agrees") / "lib"
    install_variant_tree(path, soname=SONAME)
    return path


@pytest.mark.parametrize(
    ("argv", "needle"),
    [(["which", ""], "empty SONAME"),
     (["which", SONAME, "--glibc", "banana"], "not a glibc release"),
     (["which", SONAME, "--glibc", "3.1"], "not a glibc release"),
     (["which", "libz.so.1:libm.so.6"], "not one SONAME"),
     (["which", "libz.so.1 libm.so.6"], "not one SONAME")],
)
def test_bad_values_are_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], needle: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and err.count("\n") == 1 and needle in err, err
    assert "Traceback" not in out + err


@needs_loader
@pytest.mark.parametrize(
    "extra",
    [["--glibc-tunables", "glibc.cpu.hwcaps=-AVX2:"],  # a trailing ':'
     ["--glibc-tunables", "glibc.malloc.check=0:glibc.cpu.hwcaps=-AVX512F,-AVX2"],
     ["--hwcaps-prepend", "x86-64-v2,x86-64-v3"],  # one name with a comma: not split
     ["--hwcaps-mask", "x86-64-v2:x86-64-v3"],
     ["--glibc", "2.36"]],
)
def test_accepted_values_agree_with_the_real_loader(
    capsys: pytest.CaptureFixture[str], lib: Path, extra: list[str]
) -> None:
    if extra[0] == "--glibc" and not (os.confstr("CS_GNU_LIBC_VERSION") or "").endswith("2.36"):
        pytest.skip("compares with this machine's glibc 2.36")
    code, out, err = run(capsys, "which", SONAME, "--library-path", str(lib), "--json", *extra)
    doc = json.loads(out)
    assert code == 0, err
    assert doc["real_loader"]["agrees"] is True, doc


@needs_loader
def test_search_path_syntax_agrees(
    capsys: pytest.CaptureFixture[str], lib: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """';' separates, an empty entry is the current directory, $ORIGIN is the program's."""
    monkeypatch.chdir(lib)
    up = "../" * (len(Path(shutil.which("true") or "/usr/bin/true").parent.parts) - 1)
    for value in (f"{tmp_path};", f":{tmp_path}", f"{tmp_path};{lib}", "glibc-hwcaps/x86-64-v2",
                  f"$ORIGIN/{up}{lib}", f"{tmp_path},{lib}"):
        code, out, err = run(capsys, "which", SONAME, "--library-path", value, "--json",
                             "--glibc-tunables", "glibc.cpu.hwcaps=-AVX2")
        doc = json.loads(out)
        assert doc["real_loader"]["agrees"] is True, (value, doc, err)
        assert code == (1 if value.endswith(f",{lib}") else 0), (value, doc)


@needs_loader
def test_the_loader_itself_agrees(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "which", Path(AMD64_LOADER).name)
    assert code == 0, err
    assert out.splitlines() == [f"{Path(AMD64_LOADER).name} => {AMD64_LOADER} (baseline)",
                                "real loader: agrees"]


@needs_loader
def test_a_path_as_soname_agrees(capsys: pytest.CaptureFixture[str], lib: Path) -> None:
    code, out, err = run(capsys, "which", str(lib / SONAME))
    assert code == 0, err
    assert out.splitlines()[-1] == "real loader: agrees"


def test_cpu_name_beats_a_file_of_that_name(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "haswell").mkdir()
    (tmp_path / "nehalem").write_text("not a dump\n")
    assert cpu_model("haswell").name == "haswell"
    assert cpu_model("nehalem").name == "nehalem"
    code, _, err = run(capsys, "which", SONAME, "--cpu", "./nehalem", "--no-real")
    assert code == 2 and "neither" in err  # with a '/', the file is meant


def _sysroot(root: Path, lib: Path) -> Path:
    """A minimal root: the host's loader, libc and true(1), and the library's levels with
    real names only in glibc-hwcaps (ldconfig would index them; a directory search not)."""
    triplet = "x86_64-linux-gnu"
    libdir = root / "usr/lib" / triplet
    for src, dest in ((AMD64_LOADER, root / "lib64/ld-linux-x86-64.so.2"),
                      (f"/lib/{triplet}/libc.so.6", libdir / "libc.so.6"),
                      (shutil.which("true") or "/usr/bin/true", root / "usr/bin/true")):
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.realpath(src), dest)
    install_variant_tree(libdir, soname=SONAME, soname_links=False)
    return libdir


@needs_loader
@pytest.mark.skipif(os.geteuid() != 0, reason="asks the real loader in a chroot (root)")
def test_root_without_ld_so_cache(tmp_path: Path, lib: Path) -> None:
    root = tmp_path / "root"
    libdir = _sysroot(root, lib)
    res = resolve(SONAME, cpu_model("host"), root=root)
    real = probe(SONAME, root=root)
    assert res.path == libdir / SONAME  # no cache: the SONAME is looked up, baseline
    assert real.path == res.path, (real, res.trace)
    # with a cache ldconfig wrote, the real names in glibc-hwcaps are found
    (root / "etc").mkdir()
    (root / "etc/ld.so.conf").write_text("")
    subprocess.run(["ldconfig", "-r", str(root)], check=True, capture_output=True)
    res = resolve(SONAME, cpu_model("host"), root=root)
    real = probe(SONAME, root=root)
    assert res.path is not None and "glibc-hwcaps" in str(res.path)
    assert real.path is not None and real.path.resolve() == res.path.resolve(), (real, res)
