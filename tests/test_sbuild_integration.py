"""Real sbuild runs (unshare mode, a buildd tarball of this machine's release).

- examples/vecmath through ``hwcapdeb build --builder sbuild``;
- xxhash from the archive, rebuilt by *sbuild alone* with the snippet
  ``hwcapdeb sbuild-config --profile ...`` prints (sbuild fetches the source
  in the chroot, the pre-build hook converts it on the host);
- xxhash from ``apt-get source`` through ``hwcapdeb build FILE.dsc --builder sbuild``;
- a package broken on purpose (its SONAME links in glibc-hwcaps/ deleted
  before dh_builddeb) that the verify hook must fail, with the finding in
  sbuild's log.

The chroot tarball is cached in ~/.cache/sbuild/ (sbuild's own place) and
reused; the subuid/subgid ranges unshare mode needs are added for root when
missing.  Each test checks the .debs sbuild produced with dpkg-deb.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.builders import BuildRequest
from hwcapdeb.builders.dpkg import BuildFailed, host_arch
from hwcapdeb.cli import main
from hwcapdeb.releases import host_codename
from hwcapdeb.sbuild.builder import (
    DEFAULT_CACHE,
    DEFAULT_MIRROR,
    NEEDED_IDS,
    Preflight,
    SbuildBuilder,
    chroot_tarball,
    preflight,
    subid_range,
    tarball_command,
)
from tests import corpus

pytestmark = [pytest.mark.slow, pytest.mark.sbuild]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "vecmath"
DIST = host_codename()
PROFILES = "x86-64-v3,x86-64-v4"
#: xxhash's knob: its x86 dispatcher may be compiled with AVX in the variants
XXHASH_ENV = "DEB_CPPFLAGS_APPEND=-DXXH_X86DISPATCH_ALLOW_AVX"


def _ensure_subids(user: str) -> None:
    """Give ``user`` a range of 65536 ids past every existing one (root only)."""
    for file in (Path("/etc/subuid"), Path("/etc/subgid")):
        if subid_range(file, user) >= NEEDED_IDS:
            continue
        if os.geteuid() != 0:
            pytest.skip(f"{user} has no range in {file} and this test is not root")
        text = file.read_text(encoding="utf-8") if file.exists() else ""
        ends = [
            int(p[1]) + int(p[2])
            for p in (line.split(":") for line in text.splitlines())
            if len(p) == 3 and p[1].isdigit() and p[2].isdigit()
        ]
        start = max([100000, *ends])
        with file.open("a", encoding="utf-8") as fh:
            fh.write(f"{user}:{start}:{NEEDED_IDS}\n")


@pytest.fixture(scope="module")
def arch() -> str:
    return host_arch()


def ensure_chroot(dist: str, arch: str) -> None:
    """The ``dist``-``arch`` tarball in sbuild's cache (made once, by the command hwcapdeb
    prints: the Valid-Until option only if the archive's Release has expired)."""
    for tool in ("sbuild", "mmdebstrap", "newuidmap"):
        assert shutil.which(tool), f"{tool} is not installed: run scripts/setup"
    cache = DEFAULT_CACHE.expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    # pytest-xdist workers must not append twice or write one tarball at once
    with (cache / ".hwcapdeb-tests.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _ensure_subids(pwd.getpwuid(os.getuid()).pw_name)
        if chroot_tarball(dist, arch, cache) is None:
            command = tarball_command(dist, arch, cache, DEFAULT_MIRROR)
            subprocess.run([*command, "--quiet"], check=True)
    preflight(Preflight(dist=dist, arch=arch))


@pytest.fixture(scope="module")
def sbuild_ready(arch: str) -> None:
    ensure_chroot(DIST, arch)


def _tmpfs() -> list[str]:
    """``--tmpdir /dev/shm`` when there is room: unpacking and removing each chroot
    in RAM instead of on disk halves a small package's sbuild run."""
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > 4 << 30:
        return ["--tmpdir", str(shm)]
    return []


@pytest.fixture
def fast_chroots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An SBUILD_CONFIG with only the chroot location, for the builder's own runs."""
    assert main(["sbuild-config", "--no-verify", *_tmpfs()]) == 0
    rc = tmp_path / "fast.sbuildrc"
    rc.write_text(capsys.readouterr().out)
    monkeypatch.setenv("SBUILD_CONFIG", str(rc))


def _contents(deb: Path) -> str:
    return subprocess.run(
        ["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True
    ).stdout


def _hwcaps_links(out: Path, package: str, soname: str) -> list[str]:
    """Levels whose glibc-hwcaps/<level>/<soname> link ``package``'s .deb ships."""
    (deb,) = out.glob(f"{package}_*.deb")
    return sorted(
        set(re.findall(rf"/glibc-hwcaps/([^/]+)/{re.escape(soname)} -> ", _contents(deb)))
    )


def _log(out: Path) -> str:
    logs = [p for p in out.glob("*.build") if not p.is_symlink()]
    assert len(logs) == 1, f"expected one sbuild log in {out}, found {logs}"
    return logs[0].read_text(encoding="utf-8", errors="replace")


def _hook_section(log: str) -> str:
    assert "Post Build Commands" in log, "the verify hook did not run"
    return log.split("Post Build Commands", 1)[1].split("Finished processing commands", 1)[0]


def test_example_builds_in_sbuild_and_the_hook_verifies_it(
    sbuild_ready: None, fast_chroots: None, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code = main(
        ["build", str(EXAMPLE), "--profile", PROFILES, "--builder", "sbuild", "--out", str(out)]
    )
    assert code == 0
    assert len(list(out.glob("vecmath_*.changes"))) == 1
    assert _hwcaps_links(out, "libvecmath1", "libvecmath.so.1") == ["x86-64-v3", "x86-64-v4"]
    log = _log(out)
    assert "Status: successful" in log
    hook = _hook_section(log)
    assert "verify --matrix" in hook and ".changes" in hook
    assert "dispatch matrix" in hook and "x86-64-v4" in hook
    assert "I: Finished running" in hook


def test_xxhash_rebuilt_by_sbuild_alone_with_the_config_snippet(
    sbuild_ready: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The campaign's per-package knob: xxhash's runtime dispatcher refuses to be
    # compiled with -mavx unless told it may (convert area's finding).
    options = tmp_path / "packages"
    options.write_text(f"Source: xxhash\nVariant-Env: {XXHASH_ENV}\n")
    argv = ["sbuild-config", "--profile", PROFILES, "--dist", DIST, *_tmpfs()]
    assert main([*argv, "--package-options", str(options)]) == 0
    rc = tmp_path / "sbuildrc"
    rc.write_text(capsys.readouterr().out)
    version = corpus.fetch("xxhash").name.split("_", 1)[1].removesuffix(".dsc")
    out = tmp_path / "out"
    out.mkdir()
    # sbuild alone: NAME_VERSION, sbuild fetches it in the chroot; nothing else.
    proc = subprocess.run(
        ["sbuild", "--no-run-lintian", f"xxhash_{version}"],
        cwd=out,
        env={**os.environ, "SBUILD_CONFIG": str(rc)},
        capture_output=True,
        text=True,
        check=False,
    )
    log = _log(out)
    assert proc.returncode == 0, log[-3000:]
    assert re.search(r"hwcapdeb: prepared xxhash_\S+: \d+ files changed", log)
    assert "hwcapdeb: converted xxhash_" in log
    assert _hwcaps_links(out, "libxxhash0", "libxxhash.so.0") == ["x86-64-v3", "x86-64-v4"]
    hook = _hook_section(log)
    assert "dispatch matrix" in hook and "libxxhash.so.0" in hook


def test_xxhash_from_apt_get_source_with_hwcapdeb_build(
    fast_chroots: None, sbuild_ready: None, tmp_path: Path
) -> None:
    dsc = corpus.fetch("xxhash")
    out = tmp_path / "out"
    argv = ["build", str(dsc), "--profile", PROFILES, "--builder", "sbuild", "--out", str(out)]
    assert main([*argv, "--variant-env", XXHASH_ENV]) == 0
    assert _hwcaps_links(out, "libxxhash0", "libxxhash.so.0") == ["x86-64-v3", "x86-64-v4"]
    assert "Status: successful" in _log(out)


def test_a_broken_multi_build_fails_the_sbuild_run_through_the_hook(
    sbuild_ready: None, fast_chroots: None, tmp_path: Path
) -> None:
    from hwcapdeb.convert.conversion import convert
    from hwcapdeb.convert.options import ConvertOptions
    from hwcapdeb.profiles import ProfileRegistry

    tree = tmp_path / "vecmath-1.0.0"
    shutil.copytree(EXAMPLE, tree)
    # one level is enough to break (and keeps the test short)
    convert(tree, ConvertOptions(profiles=tuple(ProfileRegistry().resolve_many(["x86-64-v3"]))))
    # Post-processing that "tidies" the package: it drops the SONAME links the
    # loader looks up in glibc-hwcaps/, so the variants are never used.
    rules = next(tree.glob("debian/hwcapdeb/maintainer.rules"), tree / "debian" / "rules")
    with rules.open("a", encoding="utf-8") as fh:
        fh.write(
            "\nexecute_before_dh_builddeb:\n"
            "\tfind debian -path '*/glibc-hwcaps/*' -type l -print -delete\n"
        )
    out = tmp_path / "out"
    with pytest.raises(BuildFailed) as caught:
        SbuildBuilder().build(BuildRequest(source=tree, out_dir=out))
    assert "verify found" in caught.value.message
    assert "missing-soname-link" in caught.value.message
    log = _log(out)
    hook = _hook_section(log)
    assert "E: libvecmath1: missing-soname-link" in hook
    assert "Fail-Stage: run-post-build-commands" in log and "Status: failed" in log
