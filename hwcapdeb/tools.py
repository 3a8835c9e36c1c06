"""Registry of external programs and the one helper that runs them.

A missing program names the Debian package to install (diffoscope's habit),
so users see ``install qemu-user`` instead of ``FileNotFoundError``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from hwcapdeb.errors import MissingToolError

#: program name -> Debian package that provides it
TOOL_PACKAGES: dict[str, str] = {
    "dpkg-buildpackage": "dpkg-dev",
    "dpkg-source": "dpkg-dev",
    "dpkg-deb": "dpkg",
    "dpkg-architecture": "dpkg-dev",
    "dpkg-buildflags": "dpkg-dev",
    "dpkg-checkbuilddeps": "dpkg-dev",
    "dh": "debhelper",
    "fakeroot": "fakeroot",
    "gcc": "gcc",
    "cc": "gcc",
    "clang": "clang",
    "objdump": "binutils",
    "readelf": "binutils",
    "qemu-x86_64": "qemu-user",
    "qemu-ppc64le": "qemu-user",
    "qemu-s390x": "qemu-user",
    "sbuild": "sbuild",
    "mmdebstrap": "mmdebstrap",
    "newuidmap": "uidmap",
    "apt-get": "apt",
    "ldconfig": "libc-bin",
    "lintian": "lintian",
    "time": "time",
    "chroot": "coreutils",
}


def find_tool(name: str) -> str:
    """Absolute path of ``name`` on PATH, or a MissingToolError naming its package."""
    path = shutil.which(name)
    if path is None:
        package = TOOL_PACKAGES.get(name)
        hint = f"install it with 'apt-get install {package}'" if package else "install it"
        raise MissingToolError(f"'{name}' was not found on PATH", hint=hint)
    return path


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    cwd: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    capture: bool = True,
    input_text: str | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run an external command with text output; a missing program is a MissingToolError."""
    args = [os.fspath(a) for a in argv]
    if os.sep not in args[0]:
        find_tool(args[0])
    return subprocess.run(
        args,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        check=check,
        text=True,
        input=input_text,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.PIPE if capture else None,
        timeout=timeout,
    )

