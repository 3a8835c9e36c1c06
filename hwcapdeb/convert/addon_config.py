"""The dh-hwcaps side of conversion: static files, ``debian/hwcaps``, Build-Depends.

dh-hwcaps (the ``dh-hwcaps/`` directory of this repository, packaged by the
root ``debian/``) holds the build-time machinery as static files: the shell
helpers, the debhelper sequence addon ``hwcaps`` and the ``dh_hwcaps_*``
commands.  A package converted in *addon* mode build-depends on
``dh-sequence-hwcaps`` and carries one file, ``debian/hwcaps`` (deb822: a first
stanza for the package, one stanza per level with the profile's flags resolved);
in *embed* mode the same static files are copied into ``debian/hwcapdeb/``.

Addon mode keeps no manifest: the conversion is two edits that are undone
exactly.  ``debian/hwcaps`` starts with a comment giving the sha256 of the
original ``debian/control``, and the Build-Depends edit puts
``dh-sequence-hwcaps,`` first in the field, removed again by
:func:`remove_build_dependency`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from hwcapdeb import __version__
from hwcapdeb.errors import SourcePackageError
from hwcapdeb.profiles import Profile, architectures

#: the per-package configuration read by dh-hwcaps
CONFIG = "debian/hwcaps"
#: the build dependency that loads the addon (Provides of dh-hwcaps)
SEQUENCE = "dh-sequence-hwcaps"
#: the build-time state of addon mode (debian/rules clean removes it)
ADDON_STATE = "debian/.hwcaps"
#: lowest debhelper compat level the addon serves
MIN_COMPAT = 10
_HEADER = re.compile(r"^# control-sha256: ([0-9a-f]{64})$", re.M)
_ADDED = f" {SEQUENCE},"


def static_dir() -> Path:
    """The static files of dh-hwcaps (installed with hwcapdeb, or the checkout's)."""
    return Path(str(resources.files("hwcapdeb.dh_hwcaps_data")))


def static_file(rel: str) -> bytes:
    return (static_dir() / rel).read_bytes()


def architectures_text() -> str:
    """dh-hwcaps/architectures: what hwcaps-config knows of each architecture."""
    out = [
        "# Generated from hwcapdeb's profiles/arch/*.json (tests/test_addon.py checks it).",
        "# One stanza per architecture with glibc-hwcaps levels, lowest level first.",
    ]
    for name, arch in sorted(architectures().items()):
        if not arch.glibc_hwcaps:
            continue
        cpus = " ".join(f"{lv.name}={lv.qemu_cpu}" for lv in arch.levels if lv.qemu_cpu)
        out += [
            "",
            f"Architecture: {name}",
            f"Triplet: {arch.triplet}",
            f"Loader: {arch.loader or ''}",
            f"Qemu: {arch.qemu or ''}",
            f"Marker: {arch.marker or 'none'}",
            f"Levels: {' '.join(lv.name for lv in arch.levels)}",
            f"Qemu-CPUs: {cpus}",
        ]
    return "\n".join(out) + "\n"


def _items(field: str, items: Sequence[str]) -> list[str]:
    if not items:
        return []
    if len(items) == 1 and " " not in items[0]:
        return [f"{field}: {items[0]}"]
    if all(" " not in item for item in items):
        return [f"{field}: {' '.join(items)}"]
    return [f"{field}:", *(f" {item}" for item in items)]


def config_text(
    *,
    arch: str,
    profiles: Sequence[Profile],
    packages: Sequence[str],
    layout: str,
    split_packages: Sequence[str],
    variant_env: Sequence[str],
    make_vars: Sequence[str],
    control_sha256: str | None,
) -> str:
    """The text of debian/hwcaps: the package's stanza, then one stanza per level."""
    lines = [
        "# glibc-hwcaps variants of this package, built by dh-hwcaps (see dh_hwcaps(7)).",
        f"# Written by hwcapdeb {__version__}; edit freely.  'hwcapdeb revert' removes",
        "# this file and the dh-sequence-hwcaps build dependency.",
    ]
    if control_sha256:
        lines.append(f"# control-sha256: {control_sha256}")
    lines += [f"Architecture: {arch}", f"Packages: {' '.join(packages)}"]
    if layout != "inline":
        lines += [f"Layout: {layout}", f"Split-Packages: {' '.join(split_packages)}"]
    lines += _items("Variant-Env", variant_env)
    lines += _items("Variant-Make-Vars", make_vars)
    for profile in profiles:
        cflags, ldflags = profile.flags_for("gcc")
        lines += ["", f"Level: {profile.level.name}"]
        if profile.name != profile.level.name:
            lines.append(f"Profile: {profile.name}")
        lines.append(f"CFlags: {' '.join(cflags)}")
        if ldflags:
            lines.append(f"LDFlags: {' '.join(ldflags)}")
    return "\n".join(lines) + "\n"


def recorded_control_sha256(config: bytes) -> str | None:
    match = _HEADER.search(config.decode("utf-8", errors="replace"))
    return match.group(1) if match else None


_BUILD_DEPENDS = re.compile(r"^(Build-Depends:)", re.I)


def _source_stanza_lines(lines: list[str]) -> range:
    """Indices of the first stanza's lines (after leading blank or comment lines)."""
    i = 0
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith("#")):
        i += 1
    end = i
    while end < len(lines) and lines[end].strip():
        end += 1
    return range(i, end)


def add_build_dependency(control: str) -> str:
    """debian/control with dh-sequence-hwcaps first in the source's Build-Depends.

    ``Build-Depends: X`` becomes ``Build-Depends: dh-sequence-hwcaps, X``: one
    line changes and :func:`remove_build_dependency` gives back the same bytes.
    A control file that already names it is returned unchanged.
    """
    lines = control.splitlines(keepends=True)
    for i in _source_stanza_lines(lines):
        if _BUILD_DEPENDS.match(lines[i]):
            if has_build_dependency(control):
                return control
            lines[i] = _BUILD_DEPENDS.sub(lambda m: m.group(1) + _ADDED, lines[i], count=1)
            return "".join(lines)
    raise SourcePackageError(
        "debian/control has no Build-Depends field in its source stanza",
        hint="add 'Build-Depends: debhelper-compat (= 13)' first",
    )


def remove_build_dependency(control: str) -> str:
    """The inverse of :func:`add_build_dependency`."""
    lines = control.splitlines(keepends=True)
    for i in _source_stanza_lines(lines):
        match = _BUILD_DEPENDS.match(lines[i])
        if match and lines[i][match.end() :].startswith(_ADDED):
            lines[i] = match.group(1) + lines[i][match.end() + len(_ADDED) :]
            return "".join(lines)
    return control


def has_build_dependency(control: str) -> bool:
    """Does the source stanza's Build-Depends name dh-sequence-hwcaps?"""
    return bool(re.search(rf"(^|[\s,]){SEQUENCE}(\s*[,(\[<]|\s*$)", _build_depends(control), re.M))


def _build_depends(control: str) -> str:
    lines = control.splitlines()
    out: list[str] = []
    for i in _source_stanza_lines(lines):
        if out and lines[i][:1] in (" ", "\t"):
            out.append(lines[i])
        elif out:
            break
        elif _BUILD_DEPENDS.match(lines[i]):
            out.append(lines[i].split(":", 1)[1])
    return "\n".join(out)
