"""Chroot tarballs for sbuild's unshare mode: where they are, how to make one, what they hold.

A tarball is named after the distribution sbuild builds for
(``~/.cache/sbuild/NAME-ARCH.tar.zst``); the releases hwcapdeb knows are data
(:mod:`hwcapdeb.releases`), any other distribution works once its tarball
exists.  The mmdebstrap command printed for a missing tarball turns apt's
Valid-Until check off only when the archive's Release file has in fact expired
(an archive snapshot), read from the archive, never assumed per release.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from hwcapdeb.errors import MissingToolError, UsageError
from hwcapdeb.releases import (
    VALID_UNTIL_OFF,
    archive_release,
    find_release,
    known_names,
    needs_valid_until_off,
)
from hwcapdeb.tools import run

DEFAULT_MIRROR = "http://deb.debian.org/debian"

#: apt.conf syntax for the check turned off ("false", "no", "0", "off" are all false to apt)
_VALID_UNTIL_OFF_RE = re.compile(r'check-valid-until\s+"?(false|no|0|off)"?\s*;', re.IGNORECASE)

_TARBALL_SUFFIXES = (".tar.zst", ".tar.xz", ".tar.gz", ".tar", ".tar.bz2", ".tar.lz4")


def chroot_tarball(dist: str, arch: str, cache: Path) -> Path | None:
    """The tarball sbuild's unshare mode would pick for ``dist``-``arch`` in ``cache``."""
    base = cache.expanduser()
    for suffix in _TARBALL_SUFFIXES:
        candidate = base / f"{dist}-{arch}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def mmdebstrap_command(
    dist: str,
    arch: str,
    cache: Path,
    mirror: str = DEFAULT_MIRROR,
    *,
    valid_until_off: bool = False,
) -> list[str]:
    """The command that creates the chroot tarball (binary and source lines, for sbuild NAME).

    ``valid_until_off``: the archive's Release file has expired (a snapshot), so
    apt must accept it; mmdebstrap keeps the option in the chroot's apt.conf.d,
    where sbuild's apt-get runs need it too.
    """
    target = cache.expanduser() / f"{dist}-{arch}.tar.zst"
    aptopt = [f"--aptopt={VALID_UNTIL_OFF}"] if valid_until_off else []
    return [
        "mmdebstrap",
        "--variant=buildd",
        f"--architectures={arch}",
        *aptopt,
        dist,
        str(target),
        f"deb {mirror} {dist} main",
        f"deb-src {mirror} {dist} main",
    ]


def tarball_command(dist: str, arch: str, cache: Path, mirror: str | None) -> list[str]:
    """:func:`mmdebstrap_command`, with the Valid-Until option if ``mirror`` says it is needed.

    ``mirror`` None: no network (the option is left out: it is added on evidence only).
    """
    expired = mirror is not None and needs_valid_until_off(mirror, dist)
    return mmdebstrap_command(dist, arch, cache, mirror or DEFAULT_MIRROR, valid_until_off=expired)


def chroot_accepts_expired(tarball: Path) -> bool:
    """Does the tarball's apt configuration turn the Valid-Until check off?"""
    result = run(["tar", "-xOf", tarball, "--wildcards", "./etc/apt/apt.conf.d/*"], check=False)
    return _VALID_UNTIL_OFF_RE.search(result.stdout) is not None


def check_dist(dist: str, arch: str, cache: Path, mirror: str | None = DEFAULT_MIRROR) -> None:
    """An unshare build needs a release hwcapdeb knows or a tarball for ``dist``.

    ``mirror``: the archive asked whether the command needs the Valid-Until
    option (None: not asked).
    """
    if find_release(dist) is not None or chroot_tarball(dist, arch, cache) is not None:
        return
    command = shlex.join(tarball_command(dist, arch, cache, mirror))
    raise UsageError(
        f"unknown distribution '{dist}': hwcapdeb knows {known_names()} "
        f"and any other with a chroot tarball in {cache}",
        hint=f"to add one, create its tarball with: {command}",
    )


def canonical_dist(dist: str, arch: str, cache: Path) -> str:
    """The name sbuild and the tarball use for ``dist`` (a codename or suite alias: its release)."""
    release = find_release(dist)
    if release is None or chroot_tarball(dist, arch, cache) is not None:
        return dist
    return release.name


def chroot_mirror(tarball: Path) -> str | None:
    """The first ``deb`` URI of the tarball's /etc/apt/sources.list (None if unreadable)."""
    # GNU tar detects the compression itself; --occurrence stops at the file
    # (near the start of an mmdebstrap tarball) instead of reading 150 MB.
    result = run(["tar", "-xOf", tarball, "--occurrence=1", "./etc/apt/sources.list"], check=False)
    if result.returncode != 0:
        return None
    for line in result.stdout.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "deb":
            uri = next((w for w in words[1:] if not w.startswith("[")), None)
            if uri and uri.startswith(("http://", "https://")):
                return uri
    return None


def check_valid_until(tarball: Path, mirror: str, dist: str, arch: str) -> None:
    """An expired Release file needs the chroot's apt to accept it (sbuild runs apt-get update)."""
    release = archive_release(mirror, dist)
    if release is None or not release.expired() or chroot_accepts_expired(tarball):
        return
    when = release.valid_until.strftime("%Y-%m-%d") if release.valid_until else "?"
    command = tarball_command(dist, arch, tarball.parent, mirror)
    raise MissingToolError(
        f"the archive's {dist} Release file expired on {when} (Valid-Until in {release.url}) "
        f"and the apt of {tarball} refuses an expired one: sbuild's apt-get update would fail",
        hint=f"move that tarball aside and recreate it with: {shlex.join(command)}",
    )
