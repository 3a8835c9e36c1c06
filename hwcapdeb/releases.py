"""The Debian releases hwcapdeb builds for, and what the archive says about them.

The releases are data (``profiles/releases.json``: the name sbuild and the
chroot tarball use, codename, suite alias, version, measured toolchain), so a
new release is a data edit.  Any other distribution works too once its chroot
tarball exists (:func:`hwcapdeb.sbuild.builder.preflight` says how to make one).

An archive snapshot may serve a suite whose Release file has expired (its
``Valid-Until`` is past): apt then refuses it unless told
``Acquire::Check-Valid-Until "false"``.  :func:`archive_release` reads the
Release file's header (not assumed per release) and caches the answer for a
while in ``~/.cache/hwcapdeb/archive/``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

from debian.deb822 import Deb822

from hwcapdeb.profiles import _data_root, _load_json

#: the apt option that accepts an expired Release file (it stays in the chroot's apt.conf.d)
VALID_UNTIL_OFF = 'Acquire::Check-Valid-Until "false"'
#: how long a Release file's answer is reused before the archive is asked again
CACHE_MAX_AGE = timedelta(hours=12)
#: enough of a Release file for its header (the hash lists come after it)
_HEADER_BYTES = 64 * 1024


@dataclass(frozen=True)
class Release:
    """One Debian release as profiles/releases.json describes it."""

    name: str  # sbuild --dist, the tarball's NAME-ARCH, the .changes' Distribution
    codename: str
    suite: str  # the archive's alias when measured (stable, oldstable, unstable)
    version: str | None
    toolchain: dict[str, str]

    @property
    def names(self) -> tuple[str, ...]:
        """Every name that means this release (its own first)."""
        return tuple(dict.fromkeys((self.name, self.codename, self.suite)))


@functools.cache
def releases() -> tuple[Release, ...]:
    """The known releases, oldest first (validated against releases.schema.json)."""
    data = _load_json(_data_root() / "releases.json", "releases.schema.json")
    return tuple(
        Release(
            name=r["name"],
            codename=r["codename"],
            suite=r["suite"],
            version=r["version"],
            toolchain=dict(r["toolchain"]),
        )
        for r in data["releases"]
    )


def find_release(name: str) -> Release | None:
    """The release ``name`` means (its name, codename or suite alias), or None."""
    for release in releases():
        if name in release.names:
            return release
    return None


def known_names() -> str:
    """'NAME (suite, version), ...' for messages."""
    parts = []
    for r in releases():
        extra = [*r.names[1:], *([r.version] if r.version else [])]
        parts.append(f"{r.name} ({', '.join(extra)})" if extra else r.name)
    return ", ".join(parts)


def host_codename(os_release: Path = Path("/etc/os-release")) -> str:
    """This machine's release codename (VERSION_CODENAME); 'unstable' if it has none."""
    try:
        text = os_release.read_text(encoding="utf-8")
    except OSError:
        return "unstable"
    for line in text.splitlines():
        key, _, value = line.partition("=")
        value = value.strip().strip("\"'")
        if key.strip() == "VERSION_CODENAME" and value:
            return value
    return "unstable"


@dataclass(frozen=True)
class ArchiveRelease:
    """The header of a suite's Release file: when it was made and how long it is valid."""

    url: str
    date: datetime | None
    valid_until: datetime | None

    def expired(self, now: datetime | None = None) -> bool:
        """Would apt refuse this Release file now (without VALID_UNTIL_OFF)?"""
        return self.valid_until is not None and self.valid_until < (now or datetime.now(UTC))


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hwcapdeb" / "archive"


def _parse_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_release_header(url: str, text: str) -> ArchiveRelease:
    """An :class:`ArchiveRelease` from the first part of a Release file."""
    header = Deb822(text.split("\nMD5Sum:", 1)[0].split("\nSHA256:", 1)[0])
    return ArchiveRelease(
        url=url,
        date=_parse_date(header.get("Date")),
        valid_until=_parse_date(header.get("Valid-Until")),
    )


def _from_cache(file: Path, now: datetime) -> ArchiveRelease | None:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
        fetched = datetime.fromisoformat(data["fetched"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not timedelta(0) <= now - fetched <= CACHE_MAX_AGE:
        return None
    return ArchiveRelease(
        url=data["url"],
        date=datetime.fromisoformat(data["date"]) if data.get("date") else None,
        valid_until=datetime.fromisoformat(data["valid_until"])
        if data.get("valid_until")
        else None,
    )


def _to_cache(file: Path, release: ArchiveRelease, now: datetime) -> None:
    data = {
        "url": release.url,
        "fetched": now.isoformat(),
        "date": release.date.isoformat() if release.date else None,
        "valid_until": release.valid_until.isoformat() if release.valid_until else None,
    }
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")
        tmp.replace(file)
    except OSError:
        pass  # a cache that cannot be written only costs another download


def archive_release(
    mirror: str,
    dist: str,
    *,
    timeout: float = 10.0,
    cache: Path | None = None,
    now: datetime | None = None,
) -> ArchiveRelease | None:
    """``mirror``'s Release header for ``dist`` (cached), or None if it cannot be read."""
    url = f"{mirror.rstrip('/')}/dists/{dist}/Release"
    now = now or datetime.now(UTC)
    file = (cache or _cache_dir()) / (hashlib.sha256(url.encode()).hexdigest()[:24] + ".json")
    cached = _from_cache(file, now)
    if cached is not None and cached.url == url:
        return cached
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read(_HEADER_BYTES).decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    release = parse_release_header(url, text)
    _to_cache(file, release, now)
    return release


def needs_valid_until_off(
    mirror: str,
    dist: str,
    *,
    timeout: float = 10.0,
    cache: Path | None = None,
    now: datetime | None = None,
) -> bool:
    """Is ``dist``'s Release file on ``mirror`` expired (apt needs VALID_UNTIL_OFF)?

    False when the file cannot be read: the option is added on evidence only.
    """
    release = archive_release(mirror, dist, timeout=timeout, cache=cache, now=now)
    return release is not None and release.expired(now)
