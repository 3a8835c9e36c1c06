"""Target releases: the data, the archive's Valid-Until read over real HTTP, the
chroot tarball checks on real tar files, and the CLI's --dist (unknown names,
aliases, the printed mmdebstrap command)."""

from __future__ import annotations

import functools
import io
import json
import tarfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jsonschema
import pytest

from hwcapdeb.cli import main
from hwcapdeb.errors import MissingToolError, UsageError
from hwcapdeb.releases import (
    archive_release,
    find_release,
    host_codename,
    needs_valid_until_off,
    parse_release_header,
    releases,
)
from hwcapdeb.sbuild.builder import Preflight, preflight
from hwcapdeb.sbuild.chroot import (
    VALID_UNTIL_OFF,
    canonical_dist,
    check_dist,
    chroot_accepts_expired,
    tarball_command,
)

DATA = Path(__file__).resolve().parent.parent / "profiles"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vecmath"
NOW = datetime.now(UTC).replace(microsecond=0)


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _release_file(date: datetime, valid_until: datetime | None) -> str:
    lines = ["Origin: Debian", "Suite: test", f"Date: {format_datetime(date, usegmt=True)}"]
    if valid_until is not None:
        lines.append(f"Valid-Until: {format_datetime(valid_until, usegmt=True)}")
    lines += ["MD5Sum:", " 0123 12 main/binary-amd64/Packages", ""]
    return "\n".join(lines)


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[str]:
    """A real HTTP archive: 'expired' and 'unstable' (Valid-Until a week ago), 'fresh'
    (in a week), 'plain' (no Valid-Until, like a stable release)."""
    root = tmp_path / "archive"
    suites = {
        "expired": _release_file(NOW - timedelta(days=30), NOW - timedelta(days=7)),
        "fresh": _release_file(NOW, NOW + timedelta(days=7)),
        "plain": _release_file(NOW, None),
    }
    suites["unstable"] = suites["expired"]
    for suite, text in suites.items():
        (root / "dists" / suite).mkdir(parents=True)
        (root / "dists" / suite / "Release").write_text(text)
        (root / "dists" / suite / "InRelease").write_text(text)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=root))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _tarball(path: Path, files: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, text in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    return path


# --- the data ----------------------------------------------------------------


def test_releases_file_matches_its_schema_and_names_are_unique() -> None:
    schema = json.loads((DATA / "releases.schema.json").read_text())
    jsonschema.validate(json.loads((DATA / "releases.json").read_text()), schema)
    names = [n for r in releases() for n in r.names]
    assert len(names) == len(set(names))
    unstable = find_release("unstable")
    assert unstable is not None and unstable.version is None
    assert find_release(unstable.codename) == unstable  # its codename
    stable = find_release("stable")
    assert stable is not None and find_release(stable.codename) == stable
    assert find_release("no-such-release") is None


def test_host_codename_from_os_release(tmp_path: Path) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text('NAME="Debian GNU/Linux"\nVERSION_CODENAME="frobnitz"\nID=debian\n')
    assert host_codename(os_release) == "frobnitz"
    os_release.write_text("NAME=Debian\nVERSION_CODENAME=\n")
    assert host_codename(os_release) == "unstable"  # Debian unstable leaves it empty
    assert host_codename(tmp_path / "absent") == "unstable"
    assert host_codename()  # this machine's


# --- the archive's Valid-Until, over HTTP --------------------------------------


def test_release_header_dates() -> None:
    text = _release_file(NOW, NOW - timedelta(hours=1))
    release = parse_release_header("u", text)
    assert release.date == NOW and release.expired()
    assert not release.expired(NOW - timedelta(hours=2))
    assert not parse_release_header("u", _release_file(NOW, None)).expired()


def test_valid_until_is_read_from_the_archive_and_cached(archive: str, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert needs_valid_until_off(archive, "expired", cache=cache)
    assert not needs_valid_until_off(archive, "fresh", cache=cache)
    assert not needs_valid_until_off(archive, "plain", cache=cache)
    assert not needs_valid_until_off(archive, "absent", cache=cache)  # 404: no evidence
    # the answers are cached: the archive is not asked again ...
    (tmp_path / "archive" / "dists" / "expired" / "Release").unlink()
    assert needs_valid_until_off(archive, "expired", cache=cache)
    # ... until the cached answer is old
    later = NOW + timedelta(days=2)
    assert archive_release(archive, "expired", cache=cache, now=later) is None
    # an unreachable archive is no evidence either
    assert not needs_valid_until_off("http://127.0.0.1:9/debian", "expired", cache=cache)


def test_mmdebstrap_command_has_the_option_only_when_expired(
    archive: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    option = f"--aptopt={VALID_UNTIL_OFF}"
    expired = tarball_command("expired", "amd64", tmp_path, archive)
    assert option in expired and f"deb-src {archive} expired main" in expired
    assert option not in tarball_command("fresh", "amd64", tmp_path, archive)
    assert option not in tarball_command("expired", "amd64", tmp_path, None)  # not asked


# --- chroot tarballs ---------------------------------------------------------------


def test_chroot_apt_config_is_read_from_the_tarball(tmp_path: Path) -> None:
    conf = "./etc/apt/apt.conf.d/99mmdebstrap"
    on = _tarball(tmp_path / "on.tar.gz", {conf: f"{VALID_UNTIL_OFF};\n"})
    off = _tarball(tmp_path / "off.tar.gz", {conf: 'Acquire::Languages "none";\n'})
    nested = _tarball(
        tmp_path / "nested.tar.gz", {conf: "Acquire {\n  Check-Valid-Until   no;\n};\n"}
    )
    assert chroot_accepts_expired(on) and chroot_accepts_expired(nested)
    assert not chroot_accepts_expired(off)


def _machine(tmp_path: Path, cache: Path, dist: str, mirror: str) -> Preflight:
    tools = tmp_path / "bin"
    tools.mkdir(exist_ok=True)
    for tool in ("sbuild", "dpkg-source", "newuidmap", "mmdebstrap"):
        (tools / tool).write_text("#!/bin/sh\n")
        (tools / tool).chmod(0o755)
    subids = tmp_path / "subid"
    subids.write_text("root:100000:65536\n")
    return Preflight(
        dist=dist,
        arch="amd64",
        path=str(tools),
        user="root",
        subuid=subids,
        subgid=subids,
        cache=cache,
        mirror=mirror,
    )


def test_preflight_refuses_a_tarball_whose_apt_refuses_the_expired_archive(
    archive: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = tmp_path / "cache"
    sources = {"./etc/apt/sources.list": f"deb {archive} expired main\n"}
    conf = "./etc/apt/apt.conf.d/99mmdebstrap"
    tarball = _tarball(cache / "expired-amd64.tar.gz", sources)
    with pytest.raises(MissingToolError, match=r"Release file expired on .* refuses") as caught:
        preflight(_machine(tmp_path, cache, "expired", "auto"))
    assert f"--aptopt={VALID_UNTIL_OFF}" in str(caught.value)
    _tarball(tarball, {**sources, conf: f"{VALID_UNTIL_OFF};\n"})
    preflight(_machine(tmp_path, cache, "expired", "auto"))
    # a fresh archive needs nothing from the tarball
    _tarball(cache / "fresh-amd64.tar.gz", {"./etc/apt/sources.list": f"deb {archive} fresh main"})
    preflight(_machine(tmp_path, cache, "fresh", "auto"))


def test_missing_tarball_command_for_an_expired_release(
    archive: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = tmp_path / "cache"
    with pytest.raises(MissingToolError, match="no unstable-amd64 chroot tarball") as caught:
        preflight(_machine(tmp_path, cache, "unstable", archive))
    assert f"'--aptopt={VALID_UNTIL_OFF}' unstable {cache}/unstable-amd64.tar.zst" in str(
        caught.value
    )


# --- --dist on the command line ------------------------------------------------


def test_unknown_dist_names_the_known_ones_and_the_tarball_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError) as caught:
        check_dist("nosuchdist", "amd64", tmp_path, None)
    message = str(caught.value)
    for release in releases():
        assert release.name in message
    assert f"mmdebstrap --variant=buildd --architectures=amd64 nosuchdist {tmp_path}/" in message
    # a tarball makes any name known
    _tarball(tmp_path / "nosuchdist-amd64.tar.zst", {})
    check_dist("nosuchdist", "amd64", tmp_path, None)

    argv = ["build", str(EXAMPLE), "-p", "x86-64-v3", "--builder", "sbuild"]
    assert main([*argv, "--dist", "nosuchdist-either", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown distribution 'nosuchdist-either'" in err
    assert not (tmp_path / "o").exists()  # nothing was started
    assert main(["sbuild-config", "--dist", "nosuchdist-either"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_dist_needs_sbuild_and_is_given_once(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["build", str(EXAMPLE), "-p", "x86-64-v3", "--dist", "unstable"]
    assert main(argv) == 2
    assert "add --builder sbuild" in capsys.readouterr().err
    assert main([*argv, "--builder", "sbuild", "--sbuild-arg=--dist=unstable"]) == 2
    assert "both name the distribution" in capsys.readouterr().err


def test_aliases_resolve_to_the_tarball_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no tarballs in ~/.cache/sbuild
    unstable = find_release("unstable")
    assert unstable is not None
    assert canonical_dist(unstable.codename, "amd64", tmp_path) == "unstable"
    _tarball(tmp_path / f"{unstable.codename}-amd64.tar.zst", {})
    assert canonical_dist(unstable.codename, "amd64", tmp_path) == unstable.codename  # the user's
    assert main(["sbuild-config", "--dist", unstable.codename]) == 0
    assert "$distribution = 'unstable';" in capsys.readouterr().out
