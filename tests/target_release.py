"""A newer Debian release's libc6 and libraries, fetched once and kept in the cache.

The tests ask a real loader of another glibc release than the host's: the
libc6 of the archive's ``unstable`` suite (found in its Packages index with a
private apt configuration), and a small real library of that suite which needs
GLIBC_2.38 symbols.  Everything lands in ~/.cache/hwcapdeb so CI reuses it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from hwcapdeb.target_loader import DEFAULT_MIRROR, mirror_from_apt

SUITE = "unstable"
#: a small real library of the suite that needs GLIBC_2.38 (__isoc23_sscanf)
NEW_LIBRARY = ("libkeyutils1", "libkeyutils.so.1")
_MAX_AGE = 14 * 86400


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hwcapdeb" / f"apt-{SUITE}"


def _apt_env() -> dict[str, str]:
    root = _cache()
    for sub in ("lists/partial", "cache/archives/partial", "etc"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    mirror = mirror_from_apt() or DEFAULT_MIRROR
    (root / "etc/sources.list").write_text(f"deb [trusted=yes] {mirror} {SUITE} main\n")
    (root / "etc/apt.conf").write_text(
        f'Dir::Etc::SourceList "{root}/etc/sources.list";\n'
        'Dir::Etc::SourceParts "/nonexistent";\n'
        f'Dir::State::Lists "{root}/lists";\nDir::Cache "{root}/cache";\n'
        'Dir::State::status "/dev/null";\nAcquire::Check-Valid-Until "false";\n'
        'Acquire::Languages "none";\nAPT::Architecture "amd64";\nAPT::Architectures "amd64";\n'
        'APT::Sandbox::User "root";\n')
    return {**os.environ, "APT_CONFIG": str(root / "etc/apt.conf")}


def _show(package: str) -> dict[str, str]:
    """Fields of ``apt-cache show PACKAGE`` in the suite (the index updated at most
    every two weeks); skips the test when the archive cannot be reached."""
    env = _apt_env()
    lists = list((_cache() / "lists").glob("*_Packages*"))
    if not lists or time.time() - lists[0].stat().st_mtime > _MAX_AGE:
        done = subprocess.run(["apt-get", "-q", "update"], env=env, capture_output=True,
                              text=True, timeout=300)
        lists = list((_cache() / "lists").glob("*_Packages*"))
        if not lists:
            pytest.skip(f"the archive's {SUITE} index cannot be fetched: {done.stderr[-200:]}")
    out = subprocess.run(["apt-cache", "show", "--no-all-versions", package], env=env,
                         capture_output=True, text=True, timeout=120)
    fields = {}
    for line in out.stdout.splitlines():
        key, sep, value = line.partition(": ")
        if sep and not line.startswith(" "):
            fields[key] = value
    if "Version" not in fields:
        pytest.skip(f"{package} is not in {SUITE}")
    return fields


def libc6_version() -> str:
    return _show("libc6")["Version"]


def new_library(dest: Path) -> Path:
    """The suite's NEW_LIBRARY file (real name), unpacked from its .deb into ``dest``."""
    package, soname = NEW_LIBRARY
    fields = _show(package)
    deb = _cache() / Path(fields["Filename"]).name
    if not deb.is_file():
        url = f"{mirror_from_apt()}/{fields['Filename']}"
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, deb.open("wb") as fh:
                shutil.copyfileobj(resp, fh)
        except OSError as err:
            pytest.skip(f"cannot fetch {url}: {err}")
    tree = dest / "unpacked"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True)
    found = sorted(p for p in tree.rglob(soname + "*") if p.is_file() and not p.is_symlink())
    return found[0]
