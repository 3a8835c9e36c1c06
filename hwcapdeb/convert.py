"""Converting a Debian source package to build glibc-hwcaps variants, and back.

Conversion changes only debian/: the maintainer's debian/rules moves to
debian/hwcapdeb/maintainer.rules and a generated debian/rules includes it
(see templates/rules.j2), plus debian/hwcapdeb/variants.sh (the build-time
machinery, sh + make + readelf only: hwcapdeb is not installed in build
chroots).  The split layout adds binary stanzas to debian/control and their
ldconfig triggers; ``--version-suffix`` adds a changelog entry.

Conversion is computed as a whole (a :class:`Plan` of final file contents)
from the *original* files, so converting twice gives the same tree, dry runs
show the exact diff and nothing is written when a check fails.  Every file
changed is recorded in debian/hwcapdeb/manifest.json with its hash; revert
restores the originals byte for byte (modes too) and refuses if a generated
file was edited since.

A file that is a symbolic link (debian/rules pointing to a shared rules file,
say) is replaced by a regular file, and its stored original is a link to the
same file (the target rewritten for the link's new directory): the wrapper
still includes the maintainer's rules, which stay editable in one place, and
revert puts back the link with its target exactly as written.
"""

from __future__ import annotations

import difflib
import email.utils
import hashlib
import json
import os
import posixpath
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from debian.changelog import Changelog
from debian.debian_support import Version

from hwcapdeb import __version__, addon
from hwcapdeb.errors import SourcePackageError, UsageError
from hwcapdeb.profiles import Profile, architecture
from hwcapdeb.source import BinaryPackage, Reader, SourcePackage, directory_reader, read_source
from hwcapdeb.validate import check_manifest, check_parents, confined, read_bytes, read_json

STATE_DIR = "debian/hwcapdeb"
MANIFEST = f"{STATE_DIR}/manifest.json"
MAINTAINER_RULES = f"{STATE_DIR}/maintainer.rules"
ORIGINALS = f"{STATE_DIR}/original"
#: dh addon that ends the variants' install sequence after dh_auto_install
#: (embed mode's copy of dh-hwcaps' hwcaps.pm, loaded only by the variant builds)
ADDON = f"{STATE_DIR}/perl/Debian/Debhelper/Sequence/hwcaps.pm"
#: embed mode: files copied verbatim from dh-hwcaps (static) -> path in the package
EMBEDDED = {
    "hwcaps-variants.sh": f"{STATE_DIR}/variants.sh",
    "hwcaps-config": f"{STATE_DIR}/hwcaps-config",
    "hwcaps-runpath": f"{STATE_DIR}/hwcaps-runpath",
    "architectures": f"{STATE_DIR}/architectures",
    "Debian/Debhelper/Sequence/hwcaps.pm": ADDON,
}
MODES = ("addon", "embed")
#: build-time residue under STATE_DIR (debian/rules clean removes it)
BUILD_DIRS = (".build", "build", "logs", "stamps", "bin")
LAYOUTS = ("inline", "split")
_SUFFIX = re.compile(r"^[A-Za-z0-9.+~]+$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=[^'\"\n\\`$]*$")


@dataclass(frozen=True)
class FileState:
    """A regular file, or with ``link`` set a symbolic link (data and mode unused)."""

    data: bytes
    mode: int
    link: str | None = None


@dataclass
class Plan:
    """The converted tree: final state of every path conversion owns (None = absent)."""

    root: Path
    files: dict[str, FileState | None] = field(default_factory=dict)

    def changes(self) -> dict[str, tuple[FileState | None, FileState | None]]:
        """path -> (current, wanted) for the paths that differ on disk."""
        result = {}
        for rel, wanted in sorted(self.files.items()):
            current = _state(self.root / rel)
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
            old_lines = _lines(old)
            new_lines = _lines(new)
            out.extend(
                difflib.unified_diff(
                    old_lines,
                    new_lines,
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
            _write(path, new)


def check_targets(root: Path, rels: Iterable[str]) -> None:
    """Before writing anything: no path conversion owns may lead out through a link."""
    for rel in rels:
        check_parents(root, rel, where=str(root), error=SourcePackageError)
        if (root / rel).is_dir() and not (root / rel).is_symlink():
            raise SourcePackageError(f"{root / rel} is a directory where hwcapdeb writes a file",
                                     hint="move it away")


def _write(path: Path, state: FileState) -> None:
    """Make ``path`` be ``state``; never writes through a link that is there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink() or path.exists():
        path.unlink()  # a new file: never written through a link, a FIFO or a hard link
    if state.link is not None:
        path.symlink_to(state.link)
        return
    path.write_bytes(state.data)
    os.chmod(path, state.mode)


def _lines(state: FileState | None) -> list[str]:
    if state is None:
        return []
    return state.data.decode("utf-8", errors="replace").splitlines(keepends=True)


def _state(path: Path) -> FileState | None:
    if path.is_symlink():
        return FileState(b"", 0, os.readlink(path))
    if not path.is_file():
        return None
    return FileState(path.read_bytes(), path.stat().st_mode & 0o7777)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _record(state: FileState) -> dict[str, str]:
    """How the manifest identifies a file conversion wrote: its hash, or a link's target."""
    return {"sha256": _sha256(state.data)} if state.link is None else {"link": state.link}


def _matches(state: FileState | None, entry: dict[str, Any]) -> bool:
    if state is None:
        return False
    if "link" in entry:
        return state.link == entry["link"]
    return state.link is None and _sha256(state.data) == entry["sha256"]


def _relink(target: str, rel: str, store: str) -> str:
    """The target a link at ``store`` needs to reach what ``target`` reaches from ``rel``."""
    if posixpath.isabs(target):
        return target
    up = posixpath.relpath(posixpath.dirname(rel) or ".", posixpath.dirname(store) or ".")
    return posixpath.join(up, target)


def load_manifest(root: Path) -> dict[str, Any] | None:
    """The manifest of a converted tree, None for an unconverted one."""
    path = root / MANIFEST
    if not path.exists() and not path.is_symlink():  # anything else there is read (and judged)
        if (root / STATE_DIR).exists() and _state(root / MAINTAINER_RULES) is not None:
            raise SourcePackageError(
                f"{STATE_DIR}/ exists but has no manifest.json",
                hint="it was not made by hwcapdeb or was damaged; restore debian/ from your VCS",
            )
        return None
    # bounded, strict UTF-8, every path in it relative and below debian/
    doc = read_json(path, what="manifest", error=SourcePackageError)
    return check_manifest(doc, where=MANIFEST, state_dir=STATE_DIR, error=SourcePackageError)


def original_reader(root: Path, manifest: dict[str, Any] | None) -> Reader:
    """Reads the tree as it was before conversion (the originals stored by it)."""
    entries: dict[str, Any] = manifest["files"] if manifest else {}

    def read(rel: str) -> bytes | None:
        entry = entries.get(rel)
        if entry is not None:
            if entry["original"] is None:
                return None
            stored = root / entry["original"]
            if "original_link" not in entry:  # a stored copy: it must lie in the tree
                stored = confined(root, entry["original"], what="stored original",
                                  where=MANIFEST, error=SourcePackageError)
            return read_bytes(stored, what="stored original", error=SourcePackageError) \
                if stored.exists() else None
        return directory_reader(root)(rel)

    return read


def tree_reader(root: Path, manifest: dict[str, Any] | None) -> Reader:
    """Reads the tree as it was before any conversion, embed (manifest) or addon."""
    read = original_reader(root, manifest)
    control = _addon_original_control(root)
    if control is None:
        return read

    def addon_read(rel: str) -> bytes | None:
        if rel == "debian/control":
            return control
        if rel == addon.CONFIG:
            return None
        return read(rel)

    return addon_read


def _addon_original_control(root: Path) -> bytes | None:
    """For a tree converted in addon mode: debian/control before conversion."""
    config = _state(root / addon.CONFIG)
    control = _state(root / "debian/control")
    if config is None or config.link is not None or control is None or control.link is not None:
        return None
    recorded = addon.recorded_control_sha256(config.data)
    if recorded is None:
        return None  # the maintainer's own debian/hwcaps
    if addon.sha256(control.data) == recorded:
        return control.data
    try:
        return addon.remove_build_dependency(control.data.decode()).encode()
    except UnicodeDecodeError:
        return None  # read_source says what is wrong with it


def _original_state(root: Path, manifest: dict[str, Any] | None, rel: str) -> FileState | None:
    entry = (manifest or {"files": {}})["files"].get(rel)
    if entry is None:
        if rel in ("debian/control", addon.CONFIG):
            original = _addon_original_control(root)
            if original is not None:
                if rel == addon.CONFIG:
                    return None
                current = _state(root / rel)
                return FileState(original, current.mode if current else 0o644)
        return _state(root / rel)
    if entry["original"] is None:
        return None
    if "original_link" in entry:
        return FileState(b"", 0, entry["original_link"])
    return FileState(original_reader(root, manifest)(rel) or b"", int(entry["original_mode"], 8))


def _original_content(root: Path, manifest: dict[str, Any] | None, rel: str) -> FileState:
    """The original text of a file conversion edits; a link's replacement gets mode 0644."""
    state = _original_state(root, manifest, rel)
    data = tree_reader(root, manifest)(rel)
    assert state is not None and data is not None  # read_source has read it
    return FileState(data, 0o644 if state.link is not None else state.mode)


def _check_links(root: Path, manifest: dict[str, Any] | None, read: Reader) -> None:
    """A link conversion must read through that leads nowhere: say so, not 'missing'."""
    for rel in ("debian/rules", "debian/control", "debian/changelog"):
        state = _original_state(root, manifest, rel)
        if state is not None and state.link is not None and read(rel) is None:
            raise SourcePackageError(
                f"{rel} is a symbolic link to {state.link}, which is not a file",
                hint="fix the link, or install the package that provides its target",
            )


def _templates() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files("hwcapdeb.template_data"))),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
    )


def changelog_author(original: str) -> str:
    """Who signs a new changelog entry: DEBFULLNAME/DEBEMAIL (as dch), else the last author."""
    name = os.environ.get("DEBFULLNAME") or os.environ.get("NAME")
    mail = os.environ.get("DEBEMAIL") or os.environ.get("EMAIL")
    return f"{name} <{mail}>" if name and mail else str(Changelog(original, max_blocks=1).author)


def _changelog_entry(
    original: str, suffix: str, levels: Sequence[str], date: str, author: str
) -> str:
    """The text of debian/changelog with a new top entry for version+suffix (dch -v)."""
    top = Changelog(original, max_blocks=1)
    new_version = f"{top.version}{suffix}"
    try:
        if Version(new_version) <= Version(str(top.version)):
            raise UsageError(
                f"--version-suffix '{suffix}' gives {new_version}, not newer than {top.version}",
                hint="use a suffix such as '+hwcaps1'",
            )
    except ValueError:
        raise UsageError(f"--version-suffix '{suffix}' gives an invalid version") from None
    block = Changelog()
    block.new_block(
        package=top.package,
        version=new_version,
        distributions=top.distributions,
        urgency=top.urgency,
        author=author,
        date=date,
        changes=[
            "",
            f"  * Build the libraries also for {', '.join(levels)} and ship them in",
            "    glibc-hwcaps/ (hwcapdeb convert).",
            "",
        ],
    )
    return str(block).rstrip("\n") + "\n\n" + original


@dataclass(frozen=True)
class ConvertOptions:
    profiles: tuple[Profile, ...]
    layout: str = "inline"
    version_suffix: str | None = None
    #: NAME=VALUE given to every variant's make command line (beats the rules' own
    #: assignments), e.g. DISPATCH=0 for a package whose runtime dispatcher refuses -mavx
    variant_make_vars: tuple[str, ...] = ()
    #: NAME=VALUE put into every variant build's environment
    variant_env: tuple[str, ...] = ()
    #: addon (Build-Depends: dh-sequence-hwcaps + debian/hwcaps), embed (the
    #: machinery copied into debian/hwcapdeb/), or None: addon for rules using
    #: dh's sequencer, else embed
    mode: str | None = "embed"


def check_options(options: ConvertOptions) -> str:
    if not options.profiles:
        raise UsageError("no profile given", hint="pass --profile, e.g. --profile x86-64-v3")
    arches = sorted({p.arch for p in options.profiles})
    if len(arches) > 1:
        raise UsageError(
            f"the profiles are for different architectures ({', '.join(arches)})",
            hint="convert with the profiles of one architecture",
        )
    if options.mode is not None and options.mode not in MODES:
        raise UsageError(f"unknown mode '{options.mode}'", hint="use addon or embed")
    if options.layout not in LAYOUTS:
        raise UsageError(f"unknown layout '{options.layout}'", hint="use inline or split")
    if options.version_suffix is not None and not _SUFFIX.match(options.version_suffix):
        raise UsageError(
            f"--version-suffix '{options.version_suffix}' has characters a version cannot have",
            hint="use letters, digits, '.', '+' or '~'",
        )
    for item in (*options.variant_make_vars, *options.variant_env):
        if not _ASSIGNMENT.match(item):
            raise UsageError(
                f"'{item}' is not NAME=VALUE",
                hint="names are letters, digits and '_'; values cannot contain quotes or newlines",
            )
    return arches[0]


def plan_conversion(root: Path, options: ConvertOptions) -> Plan:
    """Compute the converted tree; raises (touching nothing) if it cannot be done."""
    root = Path(root)
    if not (root / "debian").is_dir():
        raise SourcePackageError(
            f"{root} has no debian/ directory",
            hint="pass the top directory of an unpacked Debian source package",
        )
    arch_name = check_options(options)
    arch = architecture(arch_name)
    arch.require_hwcaps()
    manifest = load_manifest(root)
    read = tree_reader(root, manifest)
    _check_links(root, manifest, read)
    source = read_source(read)
    if not source.uses_debhelper:
        raise SourcePackageError(
            "debian/rules calls no debhelper command",
            hint="hwcapdeb installs the variants from dh_strip/dh_makeshlibs; use debhelper",
        )
    libraries = source.library_packages(arch_name, read)
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
        from hwcapdeb import convert_addon

        addon_files = convert_addon.plan_files(
            root, options, source, profiles, arch_name, libraries
        )
        return Plan(root=root, files=dict(sorted(addon_files.items())))
    levels = [p.level.name for p in profiles]
    split = []
    if options.layout == "split":
        taken = {p.name for p in source.packages}
        for lib in libraries:
            for level in levels:
                name = f"{lib.name}-{level}"
                if name in taken:
                    raise SourcePackageError(
                        f"debian/control already has a package named {name}",
                        hint="use --layout inline",
                    )
                split.append(_split_entry(lib, level, name))

    env = _templates()
    context: dict[str, Any] = {
        "version": __version__,
        "arch": arch_name,
        "triplet": arch.triplet,
        "levels": levels,
        "layout": options.layout,
        "loader": arch.loader or "",
        "qemu": arch.qemu,
        "marker": arch.marker,
        "lib_packages": [p.name for p in source.variant_packages(arch_name)],
        "split_packages": [lib.name for lib in libraries] if split else [],
        "profiles": [_profile_context(p) for p in profiles],
        "split": split,
        "make_vars": list(options.variant_make_vars),
        "variant_env": list(options.variant_env),
    }
    files: dict[str, FileState | None] = {
        "debian/rules": FileState(env.get_template("rules.j2").render(context).encode(), 0o755),
        f"{STATE_DIR}/README": FileState(
            env.get_template("README.j2").render(context).encode(), 0o644
        ),
        # the configuration dh-hwcaps reads (debian/hwcaps in addon mode)
        f"{STATE_DIR}/hwcaps": FileState(
            addon.config_text(
                arch=arch_name,
                profiles=profiles,
                packages=context["lib_packages"],
                layout=options.layout,
                split_packages=context["split_packages"],
                variant_env=options.variant_env,
                make_vars=options.variant_make_vars,
                control_sha256=None,
            ).encode(),
            0o644,
        ),
    }
    for static, rel in EMBEDDED.items():
        files[rel] = FileState(addon.static_file(static), 0o644)
    if _addon_original_control(root) is not None:
        # leaving addon mode: its two edits undone
        files.setdefault("debian/control", _original_state(root, manifest, "debian/control"))
        files[addon.CONFIG] = None
    if split:
        control = _original_content(root, manifest, "debian/control")
        text = control.data.decode()
        if not text.endswith("\n"):
            text += "\n"
        text += env.get_template("control-split.j2").render(context)
        files["debian/control"] = FileState(text.encode(), control.mode)
        triggers = env.get_template("triggers.j2").render(context).encode()
        overrides = env.get_template("lintian-overrides.j2").render(context).encode()
        for entry in split:
            files[f"debian/{entry['name']}.triggers"] = FileState(triggers, 0o644)
            files[f"debian/{entry['name']}.lintian-overrides"] = FileState(overrides, 0o644)
    date = author = None
    if options.version_suffix:
        changelog = _original_content(root, manifest, "debian/changelog")
        # converting again keeps the entry's date and author: same options, same bytes
        old = (
            manifest
            if manifest and manifest.get("version_suffix") == options.version_suffix
            else {}
        )
        date = old.get("changelog_date") or email.utils.formatdate(time.time())
        author = old.get("changelog_author") or changelog_author(changelog.data.decode())
        text = _changelog_entry(
            changelog.data.decode(), options.version_suffix, levels, date, author
        )
        files["debian/changelog"] = FileState(text.encode(), changelog.mode)

    # Every changed file outside STATE_DIR keeps its original for revert.
    entries: dict[str, Any] = {}
    for rel in [r for r in files if not r.startswith(f"{STATE_DIR}/")]:
        wanted = files[rel]
        original = _original_state(root, manifest, rel)
        if wanted is None or wanted == original:
            continue  # what a previous addon-mode conversion changed, back as it was
        if original is None:
            entries[rel] = {"original": None, "sha256": _sha256(wanted.data)}
            continue
        store = MAINTAINER_RULES if rel == "debian/rules" else f"{ORIGINALS}/{rel}"
        if original.link is not None:
            # the store is a link to the same file, so the wrapper includes the
            # maintainer's rules wherever they live
            files[store] = FileState(b"", 0, _relink(original.link, rel, store))
            entries[rel] = {
                "original": store,
                "original_link": original.link,
                "sha256": _sha256(wanted.data),
            }
            continue
        files[store] = original if rel == "debian/rules" else FileState(original.data, 0o644)
        entries[rel] = {
            "original": store,
            "original_sha256": _sha256(original.data),
            "original_mode": oct(original.mode)[2:],
            "sha256": _sha256(wanted.data),
        }
    for rel, state in files.items():
        if rel.startswith(f"{STATE_DIR}/") and state is not None:
            entries[rel] = {"original": None, **_record(state)}
    # Paths a previous conversion owned and this one does not: back to original.
    for rel in (manifest or {"files": {}})["files"]:
        if rel not in files:
            files[rel] = _original_state(root, manifest, rel)
    doc: dict[str, Any] = {
        "format": 1,
        "generator": f"hwcapdeb {__version__}",
        "source": source.name,
        "arch": arch_name,
        "profiles": [p.name for p in profiles],
        "layout": options.layout,
        "version_suffix": options.version_suffix,
        "changelog_date": date,
        "changelog_author": author,
        "variant_make_vars": list(options.variant_make_vars),
        "variant_env": list(options.variant_env),
        "files": dict(sorted(entries.items())),
    }
    files[MANIFEST] = FileState((json.dumps(doc, indent=2) + "\n").encode(), 0o644)
    return Plan(root=root, files=dict(sorted(files.items())))


def _profile_context(profile: Profile) -> dict[str, Any]:
    cflags, ldflags = profile.flags_for("gcc")
    for flag in (*cflags, *ldflags):
        if "'" in flag or "\n" in flag:
            raise UsageError(f"profile '{profile.name}': flag {flag!r} cannot be quoted for sh")
    return {
        "name": profile.name,
        "level": profile.level.name,
        "cflags": " ".join(cflags),
        "ldflags": " ".join(ldflags),
        "qemu_cpu": profile.level.qemu_cpu,
        # levels a marker of this variant must not name (the loader would refuse
        # the file on CPUs of this level)
        "levels_above": " ".join(
            lv.name for lv in architecture(profile.arch).levels if lv.rank > profile.level.rank
        ),
    }


def _split_entry(lib: BinaryPackage, level: str, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "library": lib.name,
        "level": level,
        "multi_arch": lib.multi_arch,
        "section": lib.section,
        "synopsis": lib.synopsis,
    }


def convert(root: Path, options: ConvertOptions, *, dry_run: bool = False) -> Plan:
    """Convert ``root`` (or with dry_run, only compute it); returns the plan."""
    plan = plan_conversion(root, options)
    if not dry_run:
        plan.apply()
        if MANIFEST in plan.files and plan.files[MANIFEST] is None:
            _prune(Path(root) / STATE_DIR)  # embed mode left: its empty directories too
    return plan


def _prune(top: Path) -> None:
    """Remove the empty directories under ``top`` (and ``top`` if it ends empty)."""
    if not top.is_dir() or top.is_symlink():
        return
    for path in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink() and not any(path.iterdir()):
            path.rmdir()
    if not any(top.iterdir()):
        top.rmdir()


def source_of(root: Path) -> SourcePackage:
    """The source package as it was before any conversion."""
    return read_source(tree_reader(root, load_manifest(root)))


def plan_revert(root: Path) -> Plan:
    """The original tree; SourcePackageError if it cannot be restored exactly."""
    root = Path(root)
    if not (root / "debian").is_dir():
        raise SourcePackageError(
            f"{root} has no debian/ directory",
            hint="pass the top directory of an unpacked Debian source package",
        )
    manifest = load_manifest(root)
    if manifest is None and _addon_original_control(root) is not None:
        # addon mode: the Build-Depends entry and debian/hwcaps
        files_addon: dict[str, FileState | None] = {
            "debian/control": _original_state(root, None, "debian/control"),
            addon.CONFIG: None,
        }
        return Plan(root=root, files=files_addon)
    if manifest is None:
        raise SourcePackageError(
            f"{root} was not converted by hwcapdeb (no {MANIFEST} or {addon.CONFIG})",
            hint="nothing to revert",
        )
    entries: dict[str, Any] = manifest["files"]
    known = set(entries) | {MANIFEST}
    for rel, entry in entries.items():
        current = _state(root / rel)
        if not _matches(current, entry):
            what = "was removed" if current is None else "was edited"
            raise SourcePackageError(
                f"{rel} {what} after conversion; revert would lose that change",
                hint=f"undo it, or restore the file from {entry['original'] or 'the conversion'}"
                if entry["original"]
                else "undo it, or convert again first",
            )
        if entry["original"]:
            stored = _state(root / entry["original"])
            kept = (
                {"link": _relink(entry["original_link"], rel, entry["original"])}
                if "original_link" in entry
                else {"sha256": entry["original_sha256"]}
            )
            if not _matches(stored, kept):
                raise SourcePackageError(
                    f"the stored original of {rel} ({entry['original']}) is missing or changed",
                    hint="restore debian/ from your VCS",
                )
    for path in sorted((root / STATE_DIR).rglob("*")):
        rel = path.relative_to(root).as_posix()
        sub = path.relative_to(root / STATE_DIR).parts
        if sub[0] in BUILD_DIRS or path.is_dir() or rel in known:
            continue
        raise SourcePackageError(
            f"{rel} was added after conversion; revert would delete it",
            hint=f"move it out of {STATE_DIR}/",
        )
    files: dict[str, FileState | None] = {}
    for rel, _entry in entries.items():
        files[rel] = _original_state(root, manifest, rel)
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
                _write(root / rel, new)
        for rel, (_, new) in changes.items():
            if new is None and not rel.startswith(f"{STATE_DIR}/"):
                (root / rel).unlink()
        if MANIFEST in plan.files:
            shutil.rmtree(root / STATE_DIR)
    return plan
