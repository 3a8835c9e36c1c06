"""debian/hwcapdeb/manifest.json: what embed mode wrote, and where the originals are kept.

The file is JSON (``format`` 1) with a few facts about the conversion and one
entry per path the conversion owns, keyed by its path:

- a file it changed outside ``debian/hwcapdeb/``: ``sha256`` of what it wrote
  and ``original``, where the original is kept (``debian/rules`` in
  ``maintainer.rules``, others under ``original/``), with that original's
  ``original_sha256`` and octal ``original_mode``, or ``original_link`` when
  the original was a symbolic link (then the store is a link too);
- a file it created (every file under ``debian/hwcapdeb/``): ``original``
  null and ``sha256``, or ``link`` for a link.

:meth:`Manifest.to_json` writes the same bytes as every release before the
dataclasses, so trees converted by an older hwcapdeb still revert.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwcapdeb import __version__
from hwcapdeb.convert.plan import FileState, on_disk
from hwcapdeb.errors import SourcePackageError
from hwcapdeb.validate import check_manifest, read_json

STATE_DIR = "debian/hwcapdeb"
MANIFEST = f"{STATE_DIR}/manifest.json"
MAINTAINER_RULES = f"{STATE_DIR}/maintainer.rules"
ORIGINALS = f"{STATE_DIR}/original"
#: build-time residue under STATE_DIR (debian/rules clean removes it)
BUILD_DIRS = (".build", "build", "logs", "stamps", "bin")
FORMAT = 1


@dataclass(frozen=True)
class Entry:
    """One path the conversion owns: what it wrote there, and where the original is."""

    #: where the original is stored (below STATE_DIR); None: the conversion created the path
    original: str | None
    #: what the conversion wrote: a regular file's sha256, or a link's target
    sha256: str | None = None
    link: str | None = None
    #: the original was a link to this target (its store is a link to the same file)
    original_link: str | None = None
    #: the original regular file's sha256 and permission bits
    original_sha256: str | None = None
    original_mode: int | None = None

    @classmethod
    def created(cls, state: FileState) -> Entry:
        """A path the conversion wrote where nothing was."""
        if state.link is not None:
            return cls(original=None, link=state.link)
        return cls(original=None, sha256=state.sha256)

    def written_matches(self, state: FileState | None) -> bool:
        """Is ``state`` still what the conversion wrote?"""
        return _matches(state, sha256=self.sha256, link=self.link)

    def store_matches(self, rel: str, state: FileState | None) -> bool:
        """Does the store (``state``, at ``self.original``) still hold the original of ``rel``?"""
        if self.original_link is not None and self.original is not None:
            return _matches(state, link=relink(self.original_link, rel, self.original))
        return _matches(state, sha256=self.original_sha256)

    def to_json(self) -> dict[str, str | None]:
        doc: dict[str, str | None] = {"original": self.original}
        if self.original_link is not None:
            doc["original_link"] = self.original_link
        if self.original_sha256 is not None:
            doc["original_sha256"] = self.original_sha256
        if self.original_mode is not None:
            doc["original_mode"] = oct(self.original_mode)[2:]
        if self.sha256 is not None:
            doc["sha256"] = self.sha256
        if self.link is not None:
            doc["link"] = self.link
        return doc

    @classmethod
    def from_json(cls, rel: str, doc: dict[str, Any]) -> Entry:
        """An entry :func:`~hwcapdeb.validate.check_manifest` has accepted."""
        if "link" in doc and not isinstance(doc["link"], str):
            raise _damaged(f"{rel!r:.60} has a link that is not a path")
        link = doc.get("link")
        sha256 = doc["sha256"] if link is None else None  # a link wins, as it always did
        original = doc["original"]
        if original is None:  # nothing kept: the other original_* keys mean nothing
            return cls(original=None, sha256=sha256, link=link)
        if "original_link" in doc:
            return cls(original=original, sha256=sha256, link=link,
                       original_link=doc["original_link"])
        return cls(original=original, sha256=sha256, link=link,
                   original_sha256=doc["original_sha256"],
                   original_mode=int(doc["original_mode"], 8))


@dataclass(frozen=True)
class Manifest:
    """A conversion in embed mode: its options, and every path it owns."""

    source: str
    arch: str
    profiles: tuple[str, ...]
    layout: str
    version_suffix: str | None
    #: the changelog entry's date and author, reused when converting again
    changelog_date: str | None
    changelog_author: str | None
    variant_make_vars: tuple[str, ...]
    variant_env: tuple[str, ...]
    files: dict[str, Entry] = field(default_factory=dict)
    generator: str = f"hwcapdeb {__version__}"
    format: int = FORMAT

    def to_json(self) -> str:
        doc = {
            "format": self.format,
            "generator": self.generator,
            "source": self.source,
            "arch": self.arch,
            "profiles": list(self.profiles),
            "layout": self.layout,
            "version_suffix": self.version_suffix,
            "changelog_date": self.changelog_date,
            "changelog_author": self.changelog_author,
            "variant_make_vars": list(self.variant_make_vars),
            "variant_env": list(self.variant_env),
            "files": {rel: entry.to_json() for rel, entry in sorted(self.files.items())},
        }
        return json.dumps(doc, indent=2) + "\n"

    @classmethod
    def from_json(cls, doc: Any) -> Manifest:
        """The manifest in ``doc`` (parsed JSON); SourcePackageError if it is damaged."""
        doc = check_manifest(doc, where=MANIFEST, state_dir=STATE_DIR, error=SourcePackageError)
        # Only the files and the changelog keys are used: the other facts are
        # read as found, never trusted.
        return cls(
            source=_text(doc, "source"),
            arch=_text(doc, "arch"),
            profiles=_texts(doc, "profiles"),
            layout=_text(doc, "layout"),
            version_suffix=doc.get("version_suffix"),
            changelog_date=doc.get("changelog_date"),
            changelog_author=doc.get("changelog_author"),
            variant_make_vars=_texts(doc, "variant_make_vars"),
            variant_env=_texts(doc, "variant_env"),
            files={rel: Entry.from_json(rel, entry) for rel, entry in doc["files"].items()},
            generator=_text(doc, "generator"),
            format=doc["format"] if type(doc.get("format")) is int else FORMAT,
        )


def load(root: Path) -> Manifest | None:
    """The manifest of a converted tree, None for an unconverted one."""
    path = root / MANIFEST
    if not path.exists() and not path.is_symlink():  # anything else there is read (and judged)
        if (root / STATE_DIR).exists() and on_disk(root / MAINTAINER_RULES) is not None:
            raise SourcePackageError(
                f"{STATE_DIR}/ exists but has no manifest.json",
                hint="it was not made by hwcapdeb or was damaged; restore debian/ from your VCS",
            )
        return None
    # bounded, strict UTF-8, every path in it relative and below debian/
    return Manifest.from_json(read_json(path, what="manifest", error=SourcePackageError))


def relink(target: str, rel: str, store: str) -> str:
    """The target a link at ``store`` needs to reach what ``target`` reaches from ``rel``."""
    if posixpath.isabs(target):
        return target
    up = posixpath.relpath(posixpath.dirname(rel) or ".", posixpath.dirname(store) or ".")
    return posixpath.join(up, target)


def _matches(state: FileState | None, *, sha256: str | None = None,
             link: str | None = None) -> bool:
    if state is None:
        return False
    if link is not None:
        return state.link == link
    return state.link is None and state.sha256 == sha256


def _damaged(what: str) -> SourcePackageError:
    return SourcePackageError(f"{MANIFEST} is damaged ({what})",
                              hint="restore debian/ from your VCS")


def _text(doc: dict[str, Any], key: str) -> str:
    value = doc.get(key)
    return value if isinstance(value, str) else ""


def _texts(doc: dict[str, Any], key: str) -> tuple[str, ...]:
    value = doc.get(key)
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()
