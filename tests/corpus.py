"""Real Debian source packages for integration tests and benchmarks.

``apt-get source --download-only`` fetches the sources of this machine's
release once into a cache outside the repository (``$HWCAPDEB_CORPUS_DIR``,
default ``~/.cache/hwcapdeb/corpus``); later runs reuse the cached .dsc.
Needs a ``deb-src`` entry (scripts/setup adds one).

Sources of another release (``fetch(name, dist="unstable")``) come from the
archive through apt with a private state directory in ``<cache>/<dist>/``
(the machine's apt configuration is not touched), with Valid-Until checks
off only when that release's Release file has expired (a snapshot archive).
"""

from __future__ import annotations

import fcntl
import os
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from debian.debian_support import Version

#: the packages the acceptance tests rebuild (varied build systems and rules styles)
PACKAGES = ("xxhash", "lz4", "libzstd", "zlib", "libdeflate", "libyaml", "libsodium")

#: packages whose own test suites take seconds: CI runs them against every variant
#: (xxhash has none: its rules override dh_auto_test with nothing)
QUICK_TESTS = ("libyaml", "zlib")


#: per-package `hwcapdeb build` options, as a maintainer would set them: xxhash's
#: runtime dispatcher (xxh_x86dispatch.c) #errors under -mavx unless allowed to
#: (dropping it with DISPATCH=0 would remove exported XXH3_*_dispatch symbols).
VARIANT_ENV: dict[str, tuple[str, ...]] = {
    "xxhash": ("DEB_CPPFLAGS_APPEND=-DXXH_X86DISPATCH_ALLOW_AVX",),
}


def corpus_dir() -> Path:
    configured = os.environ.get("HWCAPDEB_CORPUS_DIR")
    base = Path(configured) if configured else Path.home() / ".cache" / "hwcapdeb" / "corpus"
    base.mkdir(parents=True, exist_ok=True)
    return base


def full_corpus() -> bool:
    """HWCAPDEB_FULL_CORPUS=1: every package with its whole test suite."""
    return os.environ.get("HWCAPDEB_FULL_CORPUS", "") not in ("", "0", "no")


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # pytest-xdist workers may fetch at once; apt-get source must not race itself.
    with (directory / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _cached_dsc(directory: Path, name: str) -> Path | None:
    pattern = re.compile(rf"^{re.escape(name)}_(?P<version>[^_]+)\.dsc$")
    found = []
    for path in directory.glob(f"{name}_*.dsc"):
        match = pattern.match(path.name)
        if match:
            found.append((Version(match.group("version")), path))
    return max(found)[1] if found else None


def _release_apt(directory: Path, dist: str) -> list[str]:
    """apt-get options reading only ``dist``'s deb-src from the archive, state kept in
    ``directory/.apt`` (apt-get update runs once; later calls reuse its lists)."""
    from hwcapdeb.releases import needs_valid_until_off
    from hwcapdeb.sbuild.chroot import DEFAULT_MIRROR

    state = directory / ".apt"
    for sub in ("lists/partial", "cache/archives/partial", "parts"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    sources = state / "sources.list"
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    sources.write_text(f"deb-src [signed-by={keyring}] {DEFAULT_MIRROR} {dist} main\n")
    options = {
        "Dir::State::Lists": state / "lists",
        "Dir::Cache": state / "cache",
        "Dir::Etc::SourceList": sources,
        "Dir::Etc::SourceParts": state / "parts",
        "APT::Sandbox::User": "root" if os.geteuid() == 0 else "",
    }
    argv = [f"-o{key}={value}" for key, value in options.items() if value != ""]
    if needs_valid_until_off(DEFAULT_MIRROR, dist):
        argv.append("-oAcquire::Check-Valid-Until=false")
    if not any((state / "lists").glob("*Sources*")):
        subprocess.run(["apt-get", "update", "-qq", *argv], check=True, capture_output=True)
    return argv


def fetch(name: str, dist: str | None = None) -> Path:
    """The .dsc of source package ``name`` (of ``dist``, default this machine's release)
    in the cache, fetched if not there yet."""
    directory = corpus_dir()
    apt: list[str] = []
    if dist is not None:
        directory = directory / dist
        directory.mkdir(exist_ok=True)
    with _locked(directory):
        dsc = _cached_dsc(directory, name)
        if dsc is not None:
            return dsc
        if dist is not None:
            apt = _release_apt(directory, dist)
        result = subprocess.run(
            ["apt-get", *apt, "source", "--download-only", "-qq", name],
            cwd=directory,
            text=True,
            capture_output=True,
            check=False,
        )
        dsc = _cached_dsc(directory, name)
        if result.returncode != 0 or dsc is None:
            raise RuntimeError(
                f"apt-get source {name} failed (exit {result.returncode}): "
                f"{result.stderr.strip()[-400:]}; is there a deb-src entry (scripts/setup)?"
            )
        return dsc
