"""The dh-hwcaps .deb that addon-mode builds need (Build-Depends: dh-sequence-hwcaps).

Found in this order: ``$HWCAPDEB_DH_HWCAPS_DEB``, the newest
``out/deb/dh-hwcaps_*.deb`` of the checkout hwcapdeb runs from, else built
there with ``scripts/build-deb`` (dpkg-buildpackage; a checkout only: an
installed hwcapdeb has no debian/ directory).  The dpkg builder needs it
installed on the host (:func:`ensure_installed`); sbuild gets it with
``--extra-package``.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from pathlib import Path

from debian.debian_support import Version

from hwcapdeb.errors import ExternalCommandError, UsageError

PACKAGE = "dh-hwcaps"
ENV = "HWCAPDEB_DH_HWCAPS_DEB"


def checkout() -> Path | None:
    """The source checkout hwcapdeb runs from (with debian/ and dh-hwcaps/), if any."""
    top = Path(__file__).resolve().parents[2]
    if (top / "debian" / "control").is_file() and (top / "dh-hwcaps").is_dir():
        return top
    return None


def _deb_version(deb: Path) -> str:
    result = subprocess.run(
        ["dpkg-deb", "--field", str(deb), "Version"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise UsageError(f"{deb} is not a readable .deb", hint=f"check ${ENV} or rebuild it")
    return result.stdout.strip()


def find_deb(*, build: bool = True) -> Path:
    """The dh-hwcaps .deb to use (building it from the checkout if there is none)."""
    named = os.environ.get(ENV)
    if named:
        deb = Path(named)
        if not deb.is_file():
            raise UsageError(f"${ENV} names {deb}, which is not a file", hint="fix the path")
        return deb.resolve()
    top = checkout()
    if top is None:
        raise UsageError(
            "addon mode needs the dh-hwcaps .deb and none was found",
            hint=f"build it in a hwcapdeb checkout with 'make deb' and set ${ENV} to its path",
        )
    debs = sorted(
        (top / "out" / "deb").glob(f"{PACKAGE}_*_all.deb"),
        key=lambda p: Version(_deb_version(p)),
    )
    if debs:
        return debs[-1]
    if not build:
        raise UsageError("no dh-hwcaps .deb in out/deb", hint="run 'make deb' first")
    # a hook of sbuild's runs with no PATH at all: give dpkg-buildpackage the usual one
    env = {**os.environ, "PATH": os.environ.get("PATH") or os.defpath + ":/usr/sbin:/sbin"}
    result = subprocess.run(
        [str(top / "scripts" / "build-deb"), str(top / "out" / "deb")],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExternalCommandError(f"building dh-hwcaps failed: {last}", hint="run 'make deb'")
    return Path(result.stdout.strip().splitlines()[-1]).resolve()


def installed_version() -> str | None:
    result = subprocess.run(
        ["dpkg-query", "--showformat=${Status} ${Version}", "--show", PACKAGE],
        capture_output=True,
        text=True,
        check=False,
    )
    words = result.stdout.split()
    if result.returncode != 0 or "installed" not in words[:3] or len(words) < 4:
        return None
    return words[3]


#: files whose installed copy must equal the .deb's (same version, newer checkout)
_COMPARED = (
    "usr/share/dh-hwcaps/hwcaps-variants.sh",
    "usr/share/dh-hwcaps/hwcaps-config",
    "usr/share/perl5/Debian/Debhelper/Sequence/hwcaps.pm",
)


def _same_files(deb: Path) -> bool:
    """Are the installed dh-hwcaps files those of ``deb``?"""
    fsys = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(deb)],
                          capture_output=True, check=False)
    if fsys.returncode != 0:
        return False
    with tarfile.open(fileobj=io.BytesIO(fsys.stdout)) as tar:
        for rel in _COMPARED:
            try:
                member = tar.extractfile(f"./{rel}")
            except KeyError:
                return False
            installed = Path("/") / rel
            if member is None or not installed.is_file():
                return False
            if installed.read_bytes() != member.read():
                return False
    return True


def install_command(deb: Path) -> list[str]:
    return ["apt-get", "install", "--yes", str(deb)]


def ensure_installed(deb: Path) -> None:
    """dh-hwcaps (``deb``'s version or newer) installed on this host, as root; else refuse."""
    wanted = _deb_version(deb)
    have = installed_version()
    if have is not None and Version(have) > Version(wanted):
        return
    if have is not None and Version(have) == Version(wanted) and _same_files(deb):
        return
    command = install_command(deb)
    if have is not None and Version(have) == Version(wanted):
        command.insert(2, "--reinstall")
    if os.geteuid() != 0:
        raise UsageError(
            f"addon mode builds need dh-hwcaps {wanted} installed on this host "
            f"({'installed: ' + have if have else 'not installed'})",
            hint=f"run 'sudo {' '.join(command)}', or build with --builder sbuild",
        )
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise ExternalCommandError(
            f"'{' '.join(command)}' failed: {last}", hint="install dh-hwcaps by hand"
        )
