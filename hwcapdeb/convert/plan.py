"""The result of convert and revert: a :class:`Plan` of final file states.

A plan is computed as a whole before anything is written, so a dry run shows
the exact diff and nothing is written when a check fails; :meth:`Plan.apply`
writes only the paths that differ on disk.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from hwcapdeb.errors import SourcePackageError
from hwcapdeb.validate import check_parents


@dataclass(frozen=True)
class FileState:
    """A regular file, or with ``link`` set a symbolic link (data and mode unused)."""

    data: bytes
    mode: int
    link: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Plan:
    """The converted tree: final state of every path conversion owns (None = absent)."""

    root: Path
    files: dict[str, FileState | None] = field(default_factory=dict)

    def changes(self) -> dict[str, tuple[FileState | None, FileState | None]]:
        """path -> (current, wanted) for the paths that differ on disk."""
        result = {}
        for rel, wanted in sorted(self.files.items()):
            current = on_disk(self.root / rel)
            if current != wanted:
                result[rel] = (current, wanted)
        return result

    def diff(self) -> str:
        """A unified diff (like debdiff) from the tree on disk to the plan."""
        out: list[str] = []
        for rel, (old, new) in self.changes().items():
            # a link is no text to diff: it is said in a line of its own
            if old and old.link is not None:
                out.append(f"deleted symlink {rel} -> {old.link}\n")
                old = None
            if new and new.link is not None:
                out.append(f"new symlink {rel} -> {new.link}\n")
                new = None
            out.extend(
                difflib.unified_diff(
                    _lines(old),
                    _lines(new),
                    fromfile=f"a/{rel}" if old else "/dev/null",
                    tofile=f"b/{rel}" if new else "/dev/null",
                )
            )
            if old and new and old.mode != new.mode:
                out.append(f"mode {rel}: {oct(old.mode)} -> {oct(new.mode)}\n")
            elif new and not old:
                out.append(f"new file mode {oct(new.mode)}: {rel}\n")
        return "".join(line if line.endswith("\n") else line + "\n" for line in out)

    def apply(self) -> None:
        check_targets(self.root, self.files)
        for rel, (_, new) in self.changes().items():
            path = self.root / rel
            if new is None:
                if path.is_file() or path.is_symlink():
                    path.unlink()
                continue
            write(path, new)


def check_targets(root: Path, rels: Iterable[str]) -> None:
    """Before writing anything: no path conversion owns may lead out through a link."""
    for rel in rels:
        check_parents(root, rel, where=str(root), error=SourcePackageError)
        if (root / rel).is_dir() and not (root / rel).is_symlink():
            raise SourcePackageError(f"{root / rel} is a directory where hwcapdeb writes a file",
                                     hint="move it away")


def write(path: Path, state: FileState) -> None:
    """Make ``path`` be ``state``; never writes through a link that is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()  # a new file: never written through a link, a FIFO or a hard link
    if state.link is not None:
        path.symlink_to(state.link)
        return
    path.write_bytes(state.data)
    os.chmod(path, state.mode)


def on_disk(path: Path) -> FileState | None:
    """What ``path`` is now: a link, a regular file, or None (absent or something else)."""
    if path.is_symlink():
        return FileState(b"", 0, os.readlink(path))
    if not path.is_file():
        return None
    return FileState(path.read_bytes(), path.stat().st_mode & 0o7777)


def prune(top: Path) -> None:
    """Remove the empty directories under ``top`` (and ``top`` if it ends empty)."""
    if not top.is_dir() or top.is_symlink():
        return
    for path in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
    if not any(top.iterdir()):
        top.rmdir()


def _lines(state: FileState | None) -> list[str]:
    if state is None:
        return []
    return state.data.decode("utf-8", errors="replace").splitlines(keepends=True)
