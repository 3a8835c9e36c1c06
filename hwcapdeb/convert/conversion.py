"""Converting a source package: check, read the originals, plan one mode, apply.

:func:`plan_conversion` computes the converted tree as a whole from the
*original* files (:mod:`~hwcapdeb.convert.originals`), so converting twice
gives the same tree and nothing is written when a check fails; the mode's
module (:mod:`~hwcapdeb.convert.addon`, :mod:`~hwcapdeb.convert.embed`) says
what the tree holds.  Only debian/ changes.
"""

from __future__ import annotations

from pathlib import Path

from hwcapdeb.convert import addon, embed, manifest
from hwcapdeb.convert.options import ConvertOptions, check_options
from hwcapdeb.convert.originals import Originals
from hwcapdeb.convert.plan import Plan, prune
from hwcapdeb.errors import SourcePackageError
from hwcapdeb.profiles import architecture
from hwcapdeb.source import read_source


def plan_conversion(root: Path, options: ConvertOptions) -> Plan:
    """Compute the converted tree; raises (touching nothing) if it cannot be done."""
    root = Path(root)
    require_debian_dir(root)
    arch_name = check_options(options)
    arch = architecture(arch_name)
    arch.require_hwcaps()
    originals = Originals(root, manifest.load(root))
    originals.check_links()
    source = read_source(originals.read)
    if not source.uses_debhelper:
        raise SourcePackageError(
            "debian/rules calls no debhelper command",
            hint="hwcapdeb installs the variants from dh_strip/dh_makeshlibs; use debhelper",
        )
    libraries = source.library_packages(arch_name, originals.read)
    if not libraries:
        raise SourcePackageError(
            f"debian/control has no shared library package built on {arch_name}",
            hint="hwcapdeb converts packages that ship shared libraries",
        )
    if options.layout == "split" and not source.uses_dh_sequencer:
        raise SourcePackageError(
            "the split layout needs debian/rules to use the dh sequencer ('dh $@')",
            hint="use --layout inline",
        )

    profiles = sorted(options.profiles, key=lambda p: p.level.rank)
    mode = options.mode or ("addon" if source.uses_dh_sequencer else "embed")
    if mode == "addon":
        files = addon.plan_files(originals, options, source, profiles, arch_name, libraries)
    else:
        files = embed.plan_files(originals, options, source, profiles, arch, libraries)
    return Plan(root=root, files=dict(sorted(files.items())))


def convert(root: Path, options: ConvertOptions, *, dry_run: bool = False) -> Plan:
    """Convert ``root`` (or with dry_run, only compute it); returns the plan."""
    plan = plan_conversion(root, options)
    if not dry_run:
        plan.apply()
        if manifest.MANIFEST in plan.files and plan.files[manifest.MANIFEST] is None:
            prune(Path(root) / manifest.STATE_DIR)  # embed mode left: its empty directories too
    return plan


def require_debian_dir(root: Path) -> None:
    if not (root / "debian").is_dir():
        raise SourcePackageError(
            f"{root} has no debian/ directory",
            hint="pass the top directory of an unpacked Debian source package",
        )
