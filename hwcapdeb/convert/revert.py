"""``hwcapdeb revert``: the unconverted tree, exactly (contents, modes and symbolic links).

Revert refuses, changing nothing, when it would lose something: a file the
conversion wrote that was edited or removed since, a stored original that
changed, a file added under debian/hwcapdeb/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from hwcapdeb.convert import addon_config, manifest
from hwcapdeb.convert.conversion import require_debian_dir
from hwcapdeb.convert.manifest import BUILD_DIRS, MANIFEST, STATE_DIR, Manifest
from hwcapdeb.convert.originals import Originals
from hwcapdeb.convert.plan import FileState, Plan, check_targets, on_disk, write
from hwcapdeb.errors import SourcePackageError


def plan_revert(root: Path) -> Plan:
    """The original tree; SourcePackageError if it cannot be restored exactly."""
    root = Path(root)
    require_debian_dir(root)
    loaded = manifest.load(root)
    originals = Originals(root, loaded)
    if loaded is None and originals.addon_control is not None:
        # addon mode: the Build-Depends entry and debian/hwcaps
        return Plan(root=root, files={
            "debian/control": originals.state("debian/control"),
            addon_config.CONFIG: None,
        })
    if loaded is None:
        raise SourcePackageError(
            f"{root} was not converted by hwcapdeb (no {MANIFEST} or {addon_config.CONFIG})",
            hint="nothing to revert",
        )
    _check_unchanged(root, loaded)
    files: dict[str, FileState | None] = {rel: originals.state(rel) for rel in loaded.files}
    files[MANIFEST] = None
    return Plan(root=root, files=files)


def revert(root: Path, *, dry_run: bool = False) -> Plan:
    """Restore the unconverted tree exactly (contents, modes and symbolic links)."""
    plan = plan_revert(root)
    if not dry_run:
        # The originals live in STATE_DIR: write the restored files first.
        check_targets(root, plan.files)
        changes = plan.changes()
        for rel, (_, new) in changes.items():
            if new is not None:
                write(root / rel, new)
        for rel, (_, new) in changes.items():
            if new is None and not rel.startswith(f"{STATE_DIR}/"):
                (root / rel).unlink()
        if MANIFEST in plan.files:
            shutil.rmtree(root / STATE_DIR)
    return plan


def _check_unchanged(root: Path, loaded: Manifest) -> None:
    """Every path the conversion owns and every stored original as written, nothing added."""
    for rel, entry in loaded.files.items():
        current = on_disk(root / rel)
        if not entry.written_matches(current):
            what = "was removed" if current is None else "was edited"
            raise SourcePackageError(
                f"{rel} {what} after conversion; revert would lose that change",
                hint=f"undo it, or restore the file from {entry.original}"
                if entry.original
                else "undo it, or convert again first",
            )
        if entry.original and not entry.store_matches(rel, on_disk(root / entry.original)):
            raise SourcePackageError(
                f"the stored original of {rel} ({entry.original}) is missing or changed",
                hint="restore debian/ from your VCS",
            )
    known = set(loaded.files) | {MANIFEST}
    for path in sorted((root / STATE_DIR).rglob("*")):
        rel = path.relative_to(root).as_posix()
        sub = path.relative_to(root / STATE_DIR).parts
        if sub[0] in BUILD_DIRS or path.is_dir() or rel in known:
            continue
        raise SourcePackageError(
            f"{rel} was added after conversion; revert would delete it",
            hint=f"move it out of {STATE_DIR}/",
        )
