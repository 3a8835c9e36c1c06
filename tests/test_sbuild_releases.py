"""Real sbuild runs for the releases Debian maintainers target (unshare mode).

In an **unstable** chroot (the archive here is a snapshot whose unstable
Release file has expired: the tarball is made with the command hwcapdeb
prints, which turns the Valid-Until check off only on that evidence):

- examples/vecmath through ``hwcapdeb build --builder sbuild --dist unstable``
  (its test suite runs);
- jansson from unstable's archive through ``hwcapdeb build FILE.dsc --dist
  unstable`` (nocheck): rebuilt by unstable's gcc its library needs
  GLIBC_2.38 symbols (C23's ``__isoc23_strtoll``), so this machine's older
  loader refuses it and only unstable's own loader can judge it;
- libyaml rebuilt by *sbuild alone* (``sbuild NAME_VERSION``) with the
  campaign snippet of ``hwcapdeb sbuild-config --dist unstable --profile ...``,
  and the same in a chroot of the current stable release.

Each run must pass sbuild's post-build ``hwcapdeb verify`` hook, answered by
the loader of the release built for (its glibc version in the log); then every
variant of every library is loaded by the loader of the release it was built
for (ld.so and libc unpacked from the chroot tarball, run directly on this
machine) under GLIBC_TUNABLES masks that take the CPU down level by level.
Chroot tarballs are cached in ~/.cache/sbuild/, sources in
~/.cache/hwcapdeb/corpus/<dist>/.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from elftools.elf.gnuversions import GNUVerNeedSection

from hwcapdeb.builders.dpkg import host_arch
from hwcapdeb.cli import main
from hwcapdeb.releases import find_release
from hwcapdeb.sbuild.builder import DEFAULT_CACHE, chroot_tarball
from tests import corpus
from tests.test_corpus import (
    MASKS,
    _env,
    libraries_with_variants,
    top_supported_level,
    unpack,
)
from tests.test_sbuild_integration import (
    EXAMPLE,
    _hook_section,
    _hwcaps_links,
    _log,
    _tmpfs,
    ensure_chroot,
    fast_chroots,  # noqa: F401 (a fixture)
)

pytestmark = [pytest.mark.slow, pytest.mark.sbuild]

PROFILES = ("x86-64-v3", "x86-64-v4")
UNSTABLE = "unstable"
#: the current stable release's name (data: profiles/releases.json)
STABLE = (find_release("stable") or find_release(UNSTABLE)).name  # type: ignore[union-attr]
MULTIARCH = "x86_64-linux-gnu"
HOST_LOADER = Path("/lib64/ld-linux-x86-64.so.2")
#: glibc symbol versions a glibc 2.36 loader (this project's first host) does not have
NEW_GLIBC = tuple(f"GLIBC_2.{minor}" for minor in range(37, 60))


def _version(name: str) -> tuple[int, ...]:
    """GLIBC_2.38 -> (2, 38); other names -> ()."""
    digits = name.removeprefix("GLIBC_").split(".")
    return tuple(int(d) for d in digits) if all(d.isdigit() for d in digits) else ()


#: this machine's glibc, e.g. (2, 36)
HOST_GLIBC = _version("GLIBC_" + os.confstr("CS_GNU_LIBC_VERSION").split()[-1])


@pytest.fixture(scope="module")
def arch() -> str:
    if host_arch() != "amd64":
        pytest.skip("the release tests build amd64 variants")
    return "amd64"


def release_loader(dist: str, arch: str, root: Path) -> Path:
    """ld.so, libc and libm of ``dist``'s chroot tarball unpacked under ``root``;
    the loader's path (it runs directly on this machine, see FACTS: newer glibc
    loaders run on older hosts)."""
    tarball = chroot_tarball(dist, arch, DEFAULT_CACHE)
    assert tarball is not None
    libdir = f"./usr/lib/{MULTIARCH}"
    members = [f"{libdir}/{name}" for name in ("ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6")]
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(root), *members], check=True)
    loader = root / libdir / "ld-linux-x86-64.so.2"
    assert loader_glibc(loader)
    return loader


def loader_glibc(loader: Path) -> str:
    """'2.43' from ``ld.so --version`` ('... stable release version 2.43.')."""
    first = subprocess.run(
        [loader, "--version"], capture_output=True, text=True, check=True
    ).stdout.splitlines()[0]
    assert first.startswith("ld.so") and " version " in first, first
    return first.rsplit(" version ", 1)[1].rstrip(".")


def load(
    loader: Path, libdir: Path, soname: str, mask: str | None
) -> subprocess.CompletedProcess[str]:
    """``loader --list`` of a program with ``soname`` preloaded, the release's libc after
    ``libdir`` on the path."""
    path = f"{libdir}:{loader.parent}"
    argv = [str(loader), "--library-path", path, "--preload", soname, "--list", "/bin/true"]
    return subprocess.run(argv, env=_env(mask), capture_output=True, text=True, check=False)


def loaded_path(loader: Path, libdir: Path, soname: str, mask: str | None) -> Path:
    result = load(loader, libdir, soname, mask)
    assert result.returncode == 0, f"{loader} (mask {mask}): {result.stderr.strip()}"
    for line in result.stdout.splitlines():
        name, arrow, rest = line.strip().partition(" => ")
        if name == soname and arrow:
            return Path(rest.rsplit(" (", 1)[0])
    raise AssertionError(f"{loader} did not list {soname}:\n{result.stdout}")


def assert_variants_load(loader: Path, debs: list[Path], root: Path) -> list[tuple[Path, str]]:
    """Each mask's level gets its variant (or the baseline) from ``loader``."""
    unpack(tuple(debs), root)
    libraries = libraries_with_variants(root)
    assert libraries, f"no library with glibc-hwcaps variants in {[d.name for d in debs]}"
    for libdir, soname in libraries:
        for mask in MASKS.values():
            level = top_supported_level(mask, loader)
            built = [p for p in PROFILES if p <= level]  # x86-64-vN names sort by N
            expected = libdir / "glibc-hwcaps" / built[-1] / soname if built else libdir / soname
            got = loaded_path(loader, libdir, soname, mask)
            assert got.resolve() == expected.resolve(), f"{soname} mask {mask} ({level}): {got}"
    return libraries


def glibc_versions_needed(path: Path) -> set[str]:
    with path.open("rb") as fh:
        elf = ELFFile(fh)
        section = elf.get_section_by_name(".gnu.version_r")
        if not isinstance(section, GNUVerNeedSection):
            return set()
        return {aux.name for _, auxes in section.iter_versions() for aux in auxes}


@pytest.fixture(scope="module")
def unstable_loader(arch: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    ensure_chroot(UNSTABLE, arch)
    return release_loader(UNSTABLE, arch, tmp_path_factory.mktemp("unstable-root"))


def _debs(out: Path) -> list[Path]:
    return sorted(p for p in out.glob("*.deb") if "-dbgsym_" not in p.name)


def _assert_hook_passed(out: Path, loader: Path) -> None:
    """sbuild succeeded, its verify hook ran, and the target release's loader answered."""
    log = _log(out)
    assert "Status: successful" in log, log[-3000:]
    hook = _hook_section(log)
    assert "verify --matrix" in hook and "dispatch matrix" in hook
    assert f"loader: glibc {loader_glibc(loader)} " in hook, hook[:600]
    assert "I: Finished running" in hook


@pytest.mark.usefixtures("fast_chroots")
def test_example_for_unstable(unstable_loader: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["build", str(EXAMPLE), "--profile", ",".join(PROFILES), "--builder", "sbuild"]
    assert main([*argv, "--dist", UNSTABLE, "--out", str(out)]) == 0
    changes = next(out.glob("vecmath_*.changes")).read_text()
    assert f"Distribution: {UNSTABLE}" in changes
    _assert_hook_passed(out, unstable_loader)
    assert _hwcaps_links(out, "libvecmath1", "libvecmath.so.1") == list(PROFILES)
    assert_variants_load(unstable_loader, _debs(out), tmp_path / "root")


@pytest.mark.usefixtures("fast_chroots")
def test_jansson_needs_unstable_glibc_and_unstable_loads_it(
    unstable_loader: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dsc = corpus.fetch("jansson", dist=UNSTABLE)
    monkeypatch.setenv("DEB_BUILD_OPTIONS", "nocheck")
    out = tmp_path / "out"
    argv = ["build", str(dsc), "--profile", ",".join(PROFILES), "--builder", "sbuild"]
    # --no-arch-all: no libjansson-doc, so no sphinx in the chroot (halves the run)
    argv += ["--sbuild-arg=--no-arch-all", "--dist", UNSTABLE]
    assert main([*argv, "--out", str(out)]) == 0
    _assert_hook_passed(out, unstable_loader)
    libraries = assert_variants_load(unstable_loader, _debs(out), tmp_path / "root")
    for libdir, soname in libraries:
        for variant in [libdir, *(libdir / "glibc-hwcaps" / p for p in PROFILES)]:
            library = (variant / soname).resolve()
            assert glibc_versions_needed(library) & set(NEW_GLIBC), f"{library}: no new glibc"
        # the point: an older machine's own loader cannot judge what unstable built
        too_new = sorted(
            v
            for v in glibc_versions_needed((libdir / soname).resolve())
            if _version(v) > HOST_GLIBC
        )
        if too_new and HOST_LOADER.exists():
            refused = load(HOST_LOADER, libdir, soname, None)
            text = refused.stdout + refused.stderr
            assert f"version `{too_new[-1]}' not found" in text, text


@pytest.mark.parametrize("dist", [UNSTABLE, STABLE], ids=["unstable", "stable"])
def test_libyaml_converted_inside_sbuild(
    dist: str,
    arch: str,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ensure_chroot(dist, arch)
    rc = tmp_path / "sbuildrc"
    argv = ["sbuild-config", "--profile", ",".join(PROFILES), "--dist", dist, *_tmpfs()]
    assert main(argv) == 0
    rc.write_text(capsys.readouterr().out)
    assert f"$distribution = '{dist}';" in rc.read_text()
    version = corpus.fetch("libyaml", dist=dist).name.split("_", 1)[1].removesuffix(".dsc")
    out = tmp_path / "out"
    out.mkdir()
    # sbuild alone: NAME_VERSION, fetched in the chroot by its own apt
    proc = subprocess.run(
        ["sbuild", "--no-run-lintian", f"libyaml_{version}"],
        cwd=out,
        env={**os.environ, "SBUILD_CONFIG": str(rc), "DEB_BUILD_OPTIONS": "nocheck"},
        capture_output=True,
        text=True,
        check=False,
    )
    log = _log(out)
    assert proc.returncode == 0, log[-3000:]
    assert "hwcapdeb: converted libyaml_" in log
    loader = release_loader(dist, arch, tmp_path_factory.mktemp(f"{dist}-root"))
    _assert_hook_passed(out, loader)
    assert _hwcaps_links(out, "libyaml-0-2", "libyaml-0.so.2") == list(PROFILES)
    assert_variants_load(loader, _debs(out), tmp_path / "root")
