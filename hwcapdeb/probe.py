"""Ask the real loader which file it loads for a SONAME (the ground truth for loader.py).

Two runs of the real ``ld.so``, optionally under ``qemu-x86_64 -cpu MODEL``:

1. ``ld.so [--glibc-hwcaps-*] --library-path P --preload SONAME --list TRUE``
   prints ``SONAME => /path/chosen (0x...)``: the file the search picked.
   Trace mode skips the ISA-marker check, hence
2. the same without ``--list``: the loader really maps the file and runs
   ``true``; a refused ISA marker ("CPU ISA level is lower than required")
   or any other fatal load error shows up here.

The child's environment has no LD_LIBRARY_PATH/LD_PRELOAD/GLIBC_TUNABLES of
ours; GLIBC_TUNABLES is set only when asked for.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hwcapdeb.errors import (
    ExternalCommandError,
    MissingToolError,
    UnsupportedArchitecture,
    UsageError,
)
from hwcapdeb.glibc_rules import host_arch, loader_env
from hwcapdeb.profiles import architecture
from hwcapdeb.target_loader import TargetLoader
from hwcapdeb.tools import find_tool


@dataclass(frozen=True)
class ProbeResult:
    """What the real loader did: the file it loaded, or its error, and how it was asked."""

    path: Path | None
    error: str | None
    argv: tuple[str, ...]
    list_argv: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()

    @property
    def command(self) -> str:
        """The run as a shell line (for messages)."""
        env = " ".join(f"{k}={v}" for k, v in self.env)
        return f"{env} {' '.join(self.argv)}".strip()


def _true_program(root: Path | None = None, foreign: bool = False) -> str:
    """A program for the loader to run: true(1), or for a foreign cross sysroot without
    one, glibc's libc.so.6 (which runs as a program and prints its version)."""
    if root is not None:
        if foreign and not any((root / p).exists() for p in ("usr/bin/true", "bin/true")):
            return "/lib/libc.so.6"
        for candidate in ("/usr/bin/true", "/bin/true"):
            if (root / candidate.lstrip("/")).exists():
                return candidate
        raise ExternalCommandError(f"{root} has no /usr/bin/true to run the loader on")
    return shutil.which("true") or "/bin/true"


def _in_root(path: Path | None, root: Path | None) -> Path | None:
    """A path the loader printed inside ``root``, as seen from outside."""
    if path is None or root is None:
        return path
    inside = root / str(path).lstrip("/")
    return inside if inside.exists() or inside.is_symlink() else path


def _listed_path(output: str, soname: str, loader_name: str | None = None) -> Path | None:
    for line in output.splitlines():
        m = re.match(r"^\s*(\S+) => (.+?) \(0x[0-9a-f]+\)\s*$", line)
        if m and m.group(1) == soname:
            return Path(m.group(2))
        # listed without '=>' when the path opened is the name itself: a name with '/',
        # or one found through an empty (current directory) library path entry
        m = re.match(r"^\s*(.+?) \(0x[0-9a-f]+\)\s*$", line)
        if m and m.group(1) == soname:
            return Path(soname)
        if m and soname == loader_name and m.group(1).endswith("/" + soname):
            return Path(m.group(1))  # the loader itself, listed under its own path
    return None


def default_program() -> Path:
    """The program the loader runs for a preloaded SONAME on this machine: its
    directory is what ``$ORIGIN`` means in the library path."""
    return Path(_true_program())


def _first_error(stderr: str) -> str | None:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("qemu-") or "warning" not in ln]
    return lines[0] if lines else None


def cross_sysroot(arch: str) -> Path:
    """Debian's cross libc for ``arch`` (/usr/<triplet>, package libc6-<arch>-cross)."""
    spec = architecture(arch)
    root = Path("/usr") / spec.triplet
    if spec.loader and (root / "lib" / Path(spec.loader).name).exists():
        return root
    raise MissingToolError(
        f"no {arch} loader on this machine to ask",
        hint=f"install it with 'apt-get install libc6-{arch}-cross'",
    )


def probe(
    soname: str,
    *,
    library_path: Sequence[str | Path] = (),
    tunables: str | None = None,
    hwcaps_prepend: str | None = None,
    hwcaps_mask: str | None = None,
    qemu_cpu: str | None = None,
    root: Path | None = None,
    program: Path | None = None,
    arch: str = "amd64",
    timeout: float = 60,
    loader: TargetLoader | None = None,
) -> ProbeResult:
    """Run the real loader (under qemu-user if ``qemu_cpu``) and report what it loaded.

    With ``root`` the loader, its ld.so.cache and ld.so.conf are the sysroot's
    (``qemu -L ROOT``, or ``chroot ROOT`` for the host CPU, which needs root);
    paths in the result are outside paths (``ROOT/...``).  With ``program``
    (an executable that needs SONAME) the loader runs it instead of preloading
    SONAME into true(1), so the program's DT_RPATH/DT_RUNPATH take part.
    With ``loader`` (a target release's ld.so, see hwcapdeb.target_loader) that
    ld.so answers instead of the host's; its libc directory is appended to the
    library path so true(1) and the library's libc dependencies resolve against
    the target's libc (measured: without it the newer ld.so takes the host's libc
    from the host's ld.so.cache and refuses what needs newer GLIBC_ symbols).
    """
    spec = architecture(arch)
    if spec.loader is None or spec.qemu is None:
        raise UnsupportedArchitecture(f"{arch} has no loader hwcapdeb knows how to probe")
    prefix: list[str] = []
    ld_so = spec.loader
    target = loader if loader is not None and not loader.is_host and root is None else None
    foreign = arch != host_arch()
    if foreign:
        if not qemu_cpu:
            raise UsageError(f"probing {arch} on this machine needs a qemu CPU model")
        if root is None:
            root = cross_sysroot(arch)
    if qemu_cpu:
        prefix = [find_tool(spec.qemu), "-cpu", qemu_cpu]
        if root is not None:
            prefix += ["-L", str(root)]
            inside = root / spec.loader.lstrip("/")
            if not inside.exists():  # Debian's libc6-<arch>-cross layout: ROOT/lib/ld*.so
                inside = root / "lib" / Path(spec.loader).name
            ld_so = str(inside)
    elif root is not None:
        if os.geteuid() != 0:
            raise ExternalCommandError(
                "probing a sysroot on the host CPU needs root (chroot)",
                hint="run as root or probe with a qemu CPU model",
            )
        prefix = [find_tool("chroot"), str(root)]
    elif target is None and not Path(spec.loader).exists():
        raise ExternalCommandError(
            f"the {arch} loader {spec.loader} is not on this machine",
            hint="probe on an amd64 machine",
        )
    options: list[str] = []
    if hwcaps_prepend is not None:
        options += ["--glibc-hwcaps-prepend", hwcaps_prepend]
    if hwcaps_mask is not None:
        options += ["--glibc-hwcaps-mask", hwcaps_mask]
    if target is not None:
        ld_so = str(target.ld_so)
        library_path = [*library_path, *target.library_path()]
    path_arg = ":".join(str(p) for p in library_path)
    if path_arg:
        options += ["--library-path", path_arg]
    if program is None:
        options += ["--preload", soname]
    true = str(program) if program is not None else _true_program(root, foreign)
    argv = [*prefix, ld_so, *options, true]
    list_argv = [*prefix, ld_so, *options, "--list", true]
    env = loader_env({"GLIBC_TUNABLES": tunables} if tunables else None)
    env_shown = (("GLIBC_TUNABLES", tunables),) if tunables else ()
    try:
        listed = subprocess.run(list_argv, capture_output=True, text=True, env=env, timeout=timeout)
        ran = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ExternalCommandError(
            f"cannot run the real loader ({' '.join(argv)}): {err}"
        ) from None
    path = _in_root(_listed_path(listed.stdout, soname, Path(spec.loader).name), root)
    error = None
    if ran.returncode != 0:
        error = _first_error(ran.stderr) or f"the loader exited with status {ran.returncode}"
    elif path is None:
        error = _first_error(listed.stderr) or f"{soname} was not loaded"
    return ProbeResult(
        None if error else path, error, tuple(argv), tuple(list_argv), env_shown
    )
