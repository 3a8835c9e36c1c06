"""``hwcapdeb convert --mode addon``: Build-Depends on dh-sequence-hwcaps plus debian/hwcaps.

debian/rules is not touched: the ``hwcaps`` sequence addon of dh-hwcaps adds
its commands to dh's sequence.  So the mode needs rules that run dh's
sequencer (``dh $@``) for the build and binary targets, and a debhelper compat
level the addon serves; anything else is refused with a pointer to
``--mode embed``.  A tree converted in embed mode before is put back to its
originals on the way (switching modes), and the other way round
(:mod:`hwcapdeb.convert.originals` reads an addon-converted tree as its original).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hwcapdeb.convert import addon_config
from hwcapdeb.convert.manifest import MANIFEST
from hwcapdeb.convert.options import ConvertOptions
from hwcapdeb.convert.originals import Originals
from hwcapdeb.convert.plan import FileState, on_disk
from hwcapdeb.errors import SourcePackageError
from hwcapdeb.profiles import Profile
from hwcapdeb.source import BinaryPackage, SourcePackage

#: rules that define build targets themselves: dh's build sequence (and the
#: addon's snapshot and variant steps in it) may never run, unless the recipe
#: runs dh itself (libzstd: "build:\n\tdh $@")
_OWN_BUILD_TARGET = re.compile(
    r"^(build|build-arch)(\s+[^:=\s]+)*\s*::?(?!=)[^\n]*\n(?P<recipe>(\t[^\n]*\n)*)",
    re.MULTILINE,
)
_RUNS_DH = re.compile(r"^\t\s*dh\s", re.MULTILINE)


def refusal(source: SourcePackage, layout: str, version_suffix: str | None) -> str | None:
    """Why the addon cannot serve this package (None: it can)."""
    if not source.uses_dh_sequencer:
        return "debian/rules does not run dh's sequencer ('dh $@'), which the dh-hwcaps addon needs"
    if source.compat is None or source.compat < addon_config.MIN_COMPAT:
        return (
            f"debhelper compat level {source.compat or 'unknown'}: the dh-hwcaps addon "
            f"needs compat {addon_config.MIN_COMPAT} or later"
        )
    for match in _OWN_BUILD_TARGET.finditer(source.rules_text + "\n"):
        if not _RUNS_DH.search(match.group("recipe")):
            return "debian/rules defines its own build target, so dh's build sequence may not run"
    if layout != "inline":
        return "the split layout is not available in addon mode"
    if version_suffix:
        return "--version-suffix is not available in addon mode (use dch)"
    return None


def plan_files(
    originals: Originals,
    options: ConvertOptions,
    source: SourcePackage,
    profiles: Sequence[Profile],
    arch_name: str,
    libraries: Sequence[BinaryPackage],
) -> dict[str, FileState | None]:
    """path -> final state of the addon-mode tree (raises if it cannot be done)."""
    why = refusal(source, options.layout, options.version_suffix)
    if why:
        raise SourcePackageError(why, hint="convert with --mode embed")
    manifest = originals.manifest
    own = on_disk(originals.root / addon_config.CONFIG)
    if own is not None and originals.addon_control is None and manifest is None:
        raise SourcePackageError(
            f"{addon_config.CONFIG} exists and was not written by hwcapdeb",
            hint="move it away, or build with it as it is (Build-Depends: dh-sequence-hwcaps)",
        )
    control = originals.content("debian/control")
    new_control = addon_config.add_build_dependency(control.data.decode())
    config = addon_config.config_text(
        arch=arch_name,
        profiles=profiles,
        packages=[p.name for p in source.variant_packages(arch_name)],
        layout=options.layout,
        split_packages=[lib.name for lib in libraries],
        variant_env=options.variant_env,
        make_vars=options.variant_make_vars,
        control_sha256=control.sha256,
    )
    files: dict[str, FileState | None] = {
        "debian/control": FileState(new_control.encode(), control.mode),
        addon_config.CONFIG: FileState(config.encode(), 0o644),
    }
    if manifest is not None:
        # leaving embed mode: every file it owned back to its original
        for rel in manifest.files:
            if rel not in files:
                files[rel] = originals.state(rel)
        files[MANIFEST] = None
    return files
