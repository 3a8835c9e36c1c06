"""The target release's loader as the ground truth (hwcapdeb.target_loader).

Real: a newer release's libc6 fetched from the archive (cached), its ld.so run
directly on this host, a real library of that release that needs GLIBC_2.38,
compiled libraries, GLIBC_TUNABLES masks.  The host's older loader refuses
what the target's loads; verify on a .changes whose .buildinfo names that
libc6 asks the target's loader and says so.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import textwrap
from pathlib import Path

import pytest

from hwcapdeb.cli import main
from hwcapdeb.cpu import apply_tunables
from hwcapdeb.cpu_sources import host_model
from hwcapdeb.loader import resolve
from hwcapdeb.probe import probe
from hwcapdeb.profiles import architecture
from hwcapdeb.target_loader import (
    ARCHIVE,
    HOST,
    LOADER_ROOT,
    TARBALL,
    TargetLoader,
    fetch_libc6,
    from_root,
    host_loader,
    select_loader,
)
from hwcapdeb.verify.matrix import host_masks
from tests import target_release
from tests.elfbuild import install_variant_tree

AMD64 = architecture("amd64")
LEVELS = ("x86-64-v2", "x86-64-v3", "x86-64-v4")
pytestmark = pytest.mark.skipif(
    not os.path.exists(AMD64.loader or "") or os.uname().machine != "x86_64",
    reason="needs an amd64 host",
)


@pytest.fixture(scope="module")
def target() -> TargetLoader:
    version = target_release.libc6_version()
    try:
        root = fetch_libc6(version, AMD64)
    except OSError as err:
        pytest.skip(str(err))
    found = from_root(root, AMD64, ARCHIVE, f"libc6 {version}", version)
    if found.glibc == host_loader(AMD64).glibc:
        pytest.skip("the target release has the host's glibc")
    return found


@pytest.fixture(scope="module")
def new_lib_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real library of the target release (needs GLIBC_2.38) as baseline and variants."""
    base = tmp_path_factory.mktemp("newlib")
    real = target_release.new_library(base)
    soname = target_release.NEW_LIBRARY[1]
    libdir = base / "usr/lib/x86_64-linux-gnu"
    for directory in (libdir, *(libdir / "glibc-hwcaps" / lv for lv in LEVELS)):
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copy(real, directory / soname)
    return libdir


def _rows() -> list[str | None]:
    return [None, *host_masks(host_model())]


def test_target_loads_what_the_host_refuses(target: TargetLoader, new_lib_tree: Path) -> None:
    soname = target_release.NEW_LIBRARY[1]
    host = probe(soname, library_path=[new_lib_tree])
    assert host.path is None and "GLIBC_2.3" in (host.error or "")
    for mask in _rows():
        real = probe(soname, library_path=[new_lib_tree], tunables=mask, loader=target)
        model = resolve(soname, apply_tunables(host_model(), mask), library_path=[new_lib_tree],
                        system=False, glibc=target.glibc)
        assert real.error is None, (mask, real.error)
        assert real.path == model.path, (mask, real.command)
        assert real.argv[0] == str(target.ld_so)


def test_old_library_same_answer_from_both_loaders(target: TargetLoader, tmp_path: Path) -> None:
    install_variant_tree(tmp_path, levels=LEVELS)
    for mask in _rows():
        old = probe("libhwtest.so.1", library_path=[tmp_path], tunables=mask)
        new = probe("libhwtest.so.1", library_path=[tmp_path], tunables=mask, loader=target)
        assert old.path is not None and old.path == new.path, mask


def test_legacy_dirs_follow_the_loaders_release(target: TargetLoader, tmp_path: Path) -> None:
    """glibc 2.36 takes x86_64/ (a legacy hwcaps dir) before the plain directory; the
    target's newer loader does not; the model agrees with each."""
    install_variant_tree(tmp_path, levels=())
    legacy = tmp_path / "x86_64"
    legacy.mkdir()
    shutil.copy(tmp_path / "libhwtest.so.1.0.0", legacy / "libhwtest.so.1")
    host = host_loader(AMD64)
    for loader in (host, target):
        real = probe("libhwtest.so.1", library_path=[tmp_path], loader=loader)
        model = resolve("libhwtest.so.1", host_model(), library_path=[tmp_path], system=False,
                        glibc=loader.glibc)
        assert real.path == model.path, loader.glibc
        assert (model.legacy_dir == "x86_64") == (loader.glibc == "2.36"), model.trace


# --- verify on a .changes: the .buildinfo's libc6 ----------------------------------------


def _changes(tmp: Path, libdir: Path, libc6: str, dist: str = "hwcapdeb-test") -> Path:
    """A .deb of the tree, a .buildinfo naming libc6 and a .changes listing both."""
    pkg = tmp / "pkg"
    shutil.copytree(libdir.parents[2], pkg, symlinks=True,
                    ignore=shutil.ignore_patterns("unpacked"))
    (pkg / "DEBIAN").mkdir()
    (pkg / "DEBIAN/control").write_text(textwrap.dedent("""\
        Package: libnewtest1
        Version: 1.0-1
        Architecture: amd64
        Maintainer: Test <test@example.org>
        Description: test
        """))
    deb = tmp / "libnewtest1_1.0-1_amd64.deb"
    subprocess.run(["dpkg-deb", "-Zxz", "-b", str(pkg), str(deb)], check=True,
                   capture_output=True)
    info = tmp / "newtest_1.0-1_amd64.buildinfo"
    info.write_text(f"Format: 1.0\nSource: newtest\nBinary: libnewtest1\nArchitecture: amd64\n"
                    f"Version: 1.0-1\nInstalled-Build-Depends:\n base-files (= 14),\n"
                    f" libc6 (= {libc6}),\n libc-bin (= {libc6})\n")
    changes = tmp / "newtest_1.0-1_amd64.changes"
    changes.write_text(f"Format: 1.8\nSource: newtest\nBinary: libnewtest1\n"
                       f"Architecture: amd64\nVersion: 1.0-1\nDistribution: {dist}\nFiles:\n"
                       f" 0 0 libs optional {deb.name}\n 0 0 libs optional {info.name}\n")
    return changes


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code, out, err = _cli(capsys, "verify", "--json", *args)
    assert code in (0, 1), err
    return code, json.loads(out)


def test_verify_asks_the_buildinfo_libc6(target: TargetLoader, new_lib_tree: Path,
                                         tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    changes = _changes(tmp_path, new_lib_tree, target.libc6 or "")
    code, report = _verify(capsys, str(changes))
    # fetched, or one of this machine's sbuild chroots has that very libc6
    assert report["loader"]["source"] in (ARCHIVE, TARBALL)
    assert report["loader"]["glibc"] == target.glibc
    host_cells = [c for c in report["matrix"] if c["cpu"].startswith("host")]
    assert host_cells and all(c["agrees"] is True for c in host_cells), host_cells
    assert not [f for f in report["findings"] if f["tag"] == "loader-disagrees"]
    code, out, _ = _cli(capsys, "verify", "--matrix", str(changes))
    assert f"loader: glibc {target.glibc}" in out and code == 0
    # the host's own loader, named explicitly, refuses the library on every host row
    code, report = _verify(capsys, "--loader-root", "/", str(changes))
    assert code == 1 and report["loader"]["source"] == LOADER_ROOT
    disagree = [f for f in report["findings"] if f["tag"] == "loader-disagrees"]
    assert disagree and all("pass --loader-root" in f["message"] for f in disagree)


def test_unfetchable_libc6_warns_and_the_host_answers(
    new_lib_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HWCAPDEB_MIRROR", "http://127.0.0.1:9/debian")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    changes = _changes(tmp_path, new_lib_tree, "2.99-1")
    code, report = _verify(capsys, "--no-probe", str(changes))
    assert report["loader"]["source"] == HOST
    assert "2.99-1" in report["loader"]["warning"]
    tags = [f["tag"] for f in report["findings"]]
    assert "target-loader-unavailable" in tags and code == 0
    # with the real loader asked: the host's refuses the library, which is no finding
    # against the model (the build's loader could not be had: that is the warning)
    code, report = _verify(capsys, str(changes))
    host_cells = [c for c in report["matrix"] if c["cpu"].startswith("host")]
    assert host_cells and all(c["agrees"] is None for c in host_cells), host_cells
    assert all("not answered: the library needs GLIBC_2.3" in c["real_loader"]
               for c in host_cells)
    assert code == 0 and "loader-disagrees" not in [f["tag"] for f in report["findings"]]


# --- the order of the sources ---------------------------------------------------------------


def _tarball(target: TargetLoader, dest: Path) -> Path:
    """A chroot-like tarball (./usr/..., ./var/lib/dpkg/status) of the target's libc6."""
    with tarfile.open(dest, "w:gz") as tar:
        for entry in sorted(target.root.iterdir()):
            tar.add(entry, arcname=f"./{entry.name}")
    return dest


def test_choice_order(target: TargetLoader, new_lib_tree: Path, tmp_path: Path) -> None:
    sbuild = tmp_path / "sbuild"
    sbuild.mkdir()
    _tarball(target, sbuild / "hwcapdeb-test-amd64.tar.gz")
    (tmp_path / "c").mkdir()
    changes = _changes(tmp_path / "c", new_lib_tree, target.libc6 or "")
    cache = tmp_path / "loaders"
    # explicit root first
    got = select_loader([changes], loader_root=target.root, sbuild_cache=sbuild, cache=cache)
    assert got.source == LOADER_ROOT
    # explicit tarball file
    got = select_loader([], loader_root=sbuild / "hwcapdeb-test-amd64.tar.gz", cache=cache)
    assert got.source == LOADER_ROOT and got.glibc == target.glibc
    # the sbuild tarball of the .changes' Distribution, its libc6 matching the .buildinfo's
    got = select_loader([changes], sbuild_cache=sbuild, cache=cache, fetch=False)
    assert got.source == TARBALL and got.glibc == target.glibc and got.libc6 == target.libc6
    # the .changes' Distribution is the changelog's: any chroot with the build's libc6
    (tmp_path / "u").mkdir()
    unreleased = _changes(tmp_path / "u", new_lib_tree, target.libc6 or "", "UNRELEASED")
    got = select_loader([unreleased], sbuild_cache=sbuild, cache=cache, fetch=False)
    assert got.source == TARBALL and got.glibc == target.glibc
    # without the tarball: the .buildinfo's libc6 (already in the cache: no download)
    got = select_loader([changes], sbuild_cache=tmp_path / "none", cache=target.root.parent)
    assert got.source == ARCHIVE and got.glibc == target.glibc
    # a tarball whose libc6 is another than the build's is not used
    (tmp_path / "d").mkdir()
    other = _changes(tmp_path / "d", new_lib_tree, "2.99-1")
    warnings: list[str] = []
    got = select_loader([other], sbuild_cache=sbuild, cache=cache, fetch=False,
                        warn=warnings.append)
    assert got.source == HOST and got.warning and len(warnings) == 1
    # no build record: the host
    assert select_loader([new_lib_tree]).source == HOST


def test_same_release_as_host_needs_no_fetch(new_lib_tree: Path, tmp_path: Path) -> None:
    host = host_loader(AMD64)
    changes = _changes(tmp_path, new_lib_tree, f"{host.glibc}-1")
    got = select_loader([changes], sbuild_cache=tmp_path / "none", cache=tmp_path / "empty",
                        fetch=False)
    assert got.source == HOST and got.warning is None and "is the host's" in got.detail


# --- broken --loader-root: one line, exit 2 -------------------------------------------------


def _arm64_root(target: TargetLoader, dest: Path) -> Path:
    shutil.copytree(target.root, dest, symlinks=True)
    ld_so = (dest / "usr/lib64/ld-linux-x86-64.so.2").resolve()
    data = bytearray(ld_so.read_bytes())
    data[18:20] = (183).to_bytes(2, "little")
    ld_so.write_bytes(bytes(data))
    return dest


@pytest.mark.parametrize("kind", ["empty", "not-elf", "wrong-arch", "not-a-loader", "missing",
                                  "not-executable", "no-libc"])
def test_broken_loader_root(kind: str, target: TargetLoader, tmp_path: Path,
                            capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    if kind == "empty":
        root.mkdir()
    elif kind == "wrong-arch":
        _arm64_root(target, root)
    elif kind == "not-executable":
        shutil.copytree(target.root, root, symlinks=True)
        (root / "usr/lib64/ld-linux-x86-64.so.2").resolve().chmod(0o644)
    elif kind == "no-libc":
        shutil.copytree(target.root, root, symlinks=True)
        (root / "usr/lib/x86_64-linux-gnu/libc.so.6").unlink()
    elif kind in ("not-elf", "not-a-loader"):
        shutil.copytree(target.root, root, symlinks=True)
        ld_so = (root / "usr/lib64/ld-linux-x86-64.so.2").resolve()
        if kind == "not-elf":
            ld_so.write_text("#!/bin/sh\necho hi\n")
        else:
            shutil.copy(shutil.which("true") or "/bin/true", ld_so)
        ld_so.chmod(0o755)
    for command in (["which", "libc.so.6", "--no-real"], ["verify", str(tmp_path)]):
        code, out, err = _cli(capsys, *command, "--loader-root", str(root))
        assert code == 2, (kind, out, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hwcapdeb: error: --loader-root"), lines


def _sbuild_tarballs() -> list[tuple[str, Path]]:
    """(distribution, tarball) of the sbuild chroots this machine keeps."""
    found = []
    for path in sorted((Path.home() / ".cache/sbuild").glob("*-amd64.tar*")):
        if path.stat().st_size > 0:
            found.append((path.name.split("-amd64.tar")[0], path))
    return found


@pytest.mark.parametrize("dist", [d for d, _ in _sbuild_tarballs()] or ["none"])
def test_hook_uses_the_chroot_tarball(dist: str, new_lib_tree: Path, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """What sbuild's post-build hook runs (verify --matrix on the .changes): the loader
    of the chroot tarball of the .changes' Distribution, when its libc6 is the build's."""
    tarballs = dict(_sbuild_tarballs())
    if dist not in tarballs:
        pytest.skip("no sbuild chroot tarball in ~/.cache/sbuild")
    chroot = select_loader([], loader_root=tarballs[dist])
    changes = _changes(tmp_path, new_lib_tree, chroot.libc6 or "", dist=dist)
    code, out, _ = _cli(capsys, "verify", "--matrix", "--json", str(changes))
    report = json.loads(out)
    if chroot.glibc == host_loader(AMD64).glibc:
        assert report["loader"]["source"] == HOST
        return
    assert report["loader"]["source"] == TARBALL, report["loader"]
    assert report["loader"]["glibc"] == chroot.glibc and code == 0, report["findings"]
    assert all(c["agrees"] for c in report["matrix"] if c["cpu"].startswith("host"))


def test_bench_runs_the_target_loader(target: TargetLoader, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    """bench with --loader-root: COMMAND runs under the target's ld.so with each variant
    forced (bench checks with LD_DEBUG=libs that the variant was mapped) and says so."""
    from tests.test_bench import LIBDIR, _program, _tree
    root = _tree(tmp_path / "root", ("x86-64-v2",))
    _program(root / "usr/bin/hwprog", root / LIBDIR)
    code, out, err = _cli(capsys, "bench", str(root), "-n", "2", "--metric", "cpu", "--json",
                          "--loader-root", str(target.root), "--", "usr/bin/hwprog", "10")
    assert code == 0, err
    report = json.loads(out)
    assert report["target_loader"]["glibc"] == target.glibc
    assert report["loader"] == str(target.ld_so)
    statuses = {v["level"]: v["status"] for v in report["variants"]}
    assert statuses == {"baseline": "measured", "x86-64-v2": "measured"}, report["variants"]


@pytest.mark.parametrize("libc6,dist", [("../../../tmp/x", "hwcapdeb-test"),
                                        ("2.99-1/../../x", "hwcapdeb-test"),
                                        (None, "../../sbuild"), (None, "*")])
def test_hostile_build_records_are_ignored(libc6: str | None, dist: str, new_lib_tree: Path,
                                           tmp_path: Path) -> None:
    """Versions and distributions become file names: anything else than a Debian version
    or a plain name is ignored (the host answers, nothing is written or fetched)."""
    cache = tmp_path / "cache"
    changes = _changes(tmp_path, new_lib_tree, libc6 or f"{host_loader(AMD64).glibc}-1", dist)
    got = select_loader([changes], cache=cache, sbuild_cache=tmp_path, fetch=True)
    assert got.source == HOST and got.warning is None
    assert not cache.exists()


def test_fifo_buildinfo_does_not_block(new_lib_tree: Path, tmp_path: Path) -> None:
    changes = _changes(tmp_path, new_lib_tree, "2.99-1")
    info = next(tmp_path.glob("*.buildinfo"))
    info.unlink()
    os.mkfifo(info)
    got = select_loader([changes], cache=tmp_path / "cache", sbuild_cache=tmp_path)
    assert got.source == HOST and got.warning is None


def test_mirror_from_apt_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from hwcapdeb.target_loader import mirror_from_apt
    monkeypatch.delenv("HWCAPDEB_MIRROR", raising=False)
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    assert mirror_from_apt(etc, default=None) == ""
    (etc / "sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: x\n\n"
        "Types: deb\nURIs: http://mirror.example/debian/\nSuites: x\n")
    assert mirror_from_apt(etc) == "http://mirror.example/debian"
    (etc / "sources.list").write_text("deb [trusted=yes] http://one.example/debian x main\n")
    assert mirror_from_apt(etc) == "http://one.example/debian"
    monkeypatch.setenv("HWCAPDEB_MIRROR", "http://override.example/d/")
    assert mirror_from_apt(etc) == "http://override.example/d"


def test_deb_finds_its_buildinfo(target: TargetLoader, new_lib_tree: Path,
                                 tmp_path: Path) -> None:
    """A .deb given alone: the .buildinfo beside it that lists the package in Binary."""
    from hwcapdeb.target_loader import build_record
    changes = _changes(tmp_path, new_lib_tree, target.libc6 or "")
    changes.unlink()
    deb = next(tmp_path.glob("*.deb"))
    record = build_record([deb])
    assert record is not None and record.libc6 == target.libc6 and record.arch == "amd64"
    got = select_loader([deb], sbuild_cache=tmp_path / "none", cache=target.root.parent)
    assert got.source == ARCHIVE and got.glibc == target.glibc


def test_output_directory_stands_for_its_changes(target: TargetLoader, new_lib_tree: Path,
                                                 tmp_path: Path) -> None:
    _changes(tmp_path, new_lib_tree, target.libc6 or "")
    got = select_loader([tmp_path], sbuild_cache=tmp_path / "none", cache=target.root.parent)
    assert got.source == ARCHIVE and got.glibc == target.glibc


@pytest.mark.skipif(not shutil.which("qemu-x86_64"), reason="needs qemu-user")
def test_qemu_cpu_with_the_target_loader(target: TargetLoader, tmp_path: Path) -> None:
    """qemu's Intel Haswell: glibc 2.36 would load a haswell/ copy, the target's newer
    loader (run under qemu) does not, and the model for its release agrees."""
    from hwcapdeb.cpu_sources import cpu_model
    from tests.elfbuild import compile_library
    install_variant_tree(tmp_path, levels=())
    compile_library(tmp_path / "haswell" / "libhwtest.so.1", variant="x86-64-v3")
    real = probe("libhwtest.so.1", library_path=[tmp_path], qemu_cpu="Haswell", loader=target)
    model = resolve("libhwtest.so.1", cpu_model("haswell"), library_path=[tmp_path],
                    system=False, glibc=target.glibc)
    assert real.path == model.path == tmp_path / "libhwtest.so.1", real.command
    old = resolve("libhwtest.so.1", cpu_model("haswell"), library_path=[tmp_path],
                  system=False, glibc="2.36")
    assert old.legacy_dir == "haswell"


def test_root_whose_loader_links_out_is_refused(target: TargetLoader, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """An absolute link to the host's ld.so would answer as the host while named the
    target: refused."""
    root = tmp_path / "root"
    shutil.copytree(target.root, root, symlinks=True)
    for rel in ("usr/lib64/ld-linux-x86-64.so.2", "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"):
        (root / rel).unlink()
        (root / rel).symlink_to("/lib64/ld-linux-x86-64.so.2")
    code, _, err = _cli(capsys, "which", "libc.so.6", "--no-real", "--loader-root", str(root))
    assert code == 2 and "no /lib64/ld-linux-x86-64.so.2 in it" in err, err


def test_tarball_with_a_hostile_libc6_version(tmp_path: Path) -> None:
    from hwcapdeb.errors import InputError
    status = tmp_path / "t/var/lib/dpkg"
    status.mkdir(parents=True)
    (status / "status").write_text("Package: libc6\nStatus: install ok installed\n"
                                   "Version: ../../../escape\n")
    with tarfile.open(tmp_path / "x.tar.gz", "w:gz") as tar:
        tar.add(tmp_path / "t/var", arcname="./var")
    with pytest.raises(InputError, match="not a Debian version"):
        select_loader([], loader_root=tmp_path / "x.tar.gz", cache=tmp_path / "cache")
    assert not (tmp_path / "escape-amd64").exists()
