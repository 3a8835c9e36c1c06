"""A source tree as it was before any conversion.

Converting is always computed from the originals, so converting twice (or
switching modes) gives the same tree as converting once.  An embed-mode tree
keeps its originals under ``debian/hwcapdeb/`` (listed in the manifest); an
addon-mode tree keeps none: its two edits are undone on reading
(``debian/hwcaps`` records the sha256 of the original ``debian/control``).
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from hwcapdeb.convert import addon_config
from hwcapdeb.convert.manifest import MANIFEST, Entry, Manifest
from hwcapdeb.convert.plan import FileState, on_disk
from hwcapdeb.errors import SourcePackageError
from hwcapdeb.source import directory_reader
from hwcapdeb.validate import confined, read_bytes


class Originals:
    """Reads ``root`` as it was before conversion (embed: ``manifest``; addon: undone)."""

    def __init__(self, root: Path, manifest: Manifest | None) -> None:
        self.root = root
        self.manifest = manifest
        self.entries: dict[str, Entry] = manifest.files if manifest else {}
        self._read_disk = directory_reader(root)

    @cached_property
    def addon_control(self) -> bytes | None:
        """For a tree converted in addon mode: debian/control before conversion."""
        config = on_disk(self.root / addon_config.CONFIG)
        control = on_disk(self.root / "debian/control")
        if config is None or control is None or config.link is not None or control.link is not None:
            return None
        recorded = addon_config.recorded_control_sha256(config.data)
        if recorded is None:
            return None  # the maintainer's own debian/hwcaps
        if control.sha256 == recorded:
            return control.data
        try:
            return addon_config.remove_build_dependency(control.data.decode()).encode()
        except UnicodeDecodeError:
            return None  # read_source says what is wrong with it

    def read(self, rel: str) -> bytes | None:
        """The original content of ``rel`` (a :data:`hwcapdeb.source.Reader`)."""
        if self.addon_control is not None:
            if rel == "debian/control":
                return self.addon_control
            if rel == addon_config.CONFIG:
                return None
        return self._read_stored(rel)

    def state(self, rel: str) -> FileState | None:
        """The original of ``rel``: a file with its mode, a link, or None (absent)."""
        entry = self.entries.get(rel)
        if entry is None:
            if rel in ("debian/control", addon_config.CONFIG) and self.addon_control is not None:
                if rel == addon_config.CONFIG:
                    return None
                current = on_disk(self.root / rel)
                return FileState(self.addon_control, current.mode if current else 0o644)
            return on_disk(self.root / rel)
        if entry.original is None:
            return None
        if entry.original_link is not None:
            return FileState(b"", 0, entry.original_link)
        assert entry.original_mode is not None  # Entry.from_json: a stored file has a mode
        return FileState(self._read_stored(rel) or b"", entry.original_mode)

    def content(self, rel: str) -> FileState:
        """The original text of a file conversion edits; a link's replacement gets mode 0644."""
        state = self.state(rel)
        data = self.read(rel)
        assert state is not None and data is not None  # read_source has read it
        return FileState(data, 0o644 if state.link is not None else state.mode)

    def check_links(self) -> None:
        """A link conversion must read through that leads nowhere: say so, not 'missing'."""
        for rel in ("debian/rules", "debian/control", "debian/changelog"):
            state = self.state(rel)
            if state is not None and state.link is not None and self.read(rel) is None:
                raise SourcePackageError(
                    f"{rel} is a symbolic link to {state.link}, which is not a file",
                    hint="fix the link, or install the package that provides its target",
                )

    def _read_stored(self, rel: str) -> bytes | None:
        """``rel`` as embed mode stored it, or as it is on disk if embed mode left it alone."""
        entry = self.entries.get(rel)
        if entry is None:
            return self._read_disk(rel)
        if entry.original is None:
            return None
        stored = self.root / entry.original
        if entry.original_link is None:  # a stored copy: it must lie in the tree
            stored = confined(self.root, entry.original, what="stored original",
                              where=MANIFEST, error=SourcePackageError)
        return read_bytes(stored, what="stored original", error=SourcePackageError) \
            if stored.exists() else None
