"""``hwcapdeb convert --mode embed``: the dh-hwcaps machinery copied into debian/hwcapdeb/.

The maintainer's debian/rules moves to debian/hwcapdeb/maintainer.rules and
a generated debian/rules includes it (templates/rules.j2); dh-hwcaps' static
files are copied beside it (sh + make + perl + readelf only: hwcapdeb is not
installed in build chroots) with the configuration they read,
debian/hwcapdeb/hwcaps.  The split layout adds binary stanzas to
debian/control and their ldconfig triggers; ``--version-suffix`` adds a
changelog entry.

Every file changed outside debian/hwcapdeb/ keeps its original there, and the
manifest lists every path with its hash, so revert restores the originals
byte for byte (modes too) and refuses if a generated file was edited since.

A file that is a symbolic link (debian/rules pointing to a shared rules file,
say) is replaced by a regular file, and its stored original is a link to the
same file (the target rewritten for the link's new directory): the wrapper
still includes the maintainer's rules, which stay editable in one place, and
revert puts back the link with its target exactly as written.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Sequence

from hwcapdeb import __version__
from hwcapdeb.convert import addon_config
from hwcapdeb.convert.changelog import changelog_author, changelog_entry
from hwcapdeb.convert.manifest import (
    MAINTAINER_RULES,
    MANIFEST,
    ORIGINALS,
    STATE_DIR,
    Entry,
    Manifest,
    relink,
)
from hwcapdeb.convert.options import ConvertOptions
from hwcapdeb.convert.originals import Originals
from hwcapdeb.convert.plan import FileState
from hwcapdeb.convert.render import SplitPackage, TemplateContext, render
from hwcapdeb.errors import SourcePackageError, UsageError
from hwcapdeb.profiles import Architecture, Profile
from hwcapdeb.source import BinaryPackage, SourcePackage

#: dh addon that ends the variants' install sequence after dh_auto_install
#: (embed mode's copy of dh-hwcaps' hwcaps.pm, loaded only by the variant builds)
ADDON = f"{STATE_DIR}/perl/Debian/Debhelper/Sequence/hwcaps.pm"
#: files copied verbatim from dh-hwcaps (static) -> path in the package
EMBEDDED = {
    "hwcaps-variants.sh": f"{STATE_DIR}/variants.sh",
    "hwcaps-config": f"{STATE_DIR}/hwcaps-config",
    "hwcaps-runpath": f"{STATE_DIR}/hwcaps-runpath",
    "architectures": f"{STATE_DIR}/architectures",
    "Debian/Debhelper/Sequence/hwcaps.pm": ADDON,
}

Files = dict[str, FileState | None]


def plan_files(
    originals: Originals,
    options: ConvertOptions,
    source: SourcePackage,
    profiles: Sequence[Profile],
    arch: Architecture,
    libraries: Sequence[BinaryPackage],
) -> Files:
    """path -> final state of the embed-mode tree with its manifest (raises if it cannot be)."""
    levels = tuple(p.level.name for p in profiles)
    split = _split_packages(source, libraries, levels) if options.layout == "split" else ()
    _check_quotable(profiles)
    context = TemplateContext(
        version=__version__,
        arch=arch.arch,
        triplet=arch.triplet,
        levels=levels,
        layout=options.layout,
        split=split,
    )
    files = _generated_files(context, options, source, profiles, libraries)
    if originals.addon_control is not None:
        # leaving addon mode: its two edits undone
        files.setdefault("debian/control", originals.state("debian/control"))
        files[addon_config.CONFIG] = None
    if split:
        files.update(_split_files(originals, context))
    date = author = None
    if options.version_suffix:
        files["debian/changelog"], date, author = _changelog(
            originals, options.version_suffix, levels
        )

    entries = _keep_originals(files, originals)
    for rel, state in files.items():
        if rel.startswith(f"{STATE_DIR}/") and state is not None:
            entries[rel] = Entry.created(state)
    # Paths a previous conversion owned and this one does not: back to original.
    for rel in originals.entries:
        if rel not in files:
            files[rel] = originals.state(rel)
    manifest = Manifest(
        source=source.name,
        arch=arch.arch,
        profiles=tuple(p.name for p in profiles),
        layout=options.layout,
        version_suffix=options.version_suffix,
        changelog_date=date,
        changelog_author=author,
        variant_make_vars=options.variant_make_vars,
        variant_env=options.variant_env,
        files=entries,
    )
    files[MANIFEST] = FileState(manifest.to_json().encode(), 0o644)
    return files


def _generated_files(
    context: TemplateContext,
    options: ConvertOptions,
    source: SourcePackage,
    profiles: Sequence[Profile],
    libraries: Sequence[BinaryPackage],
) -> Files:
    """The files under STATE_DIR (but the stored originals) and debian/rules."""
    files: Files = {
        "debian/rules": FileState(render("rules.j2", context), 0o755),
        f"{STATE_DIR}/README": FileState(render("README.j2", context), 0o644),
        # the configuration dh-hwcaps reads (debian/hwcaps in addon mode)
        f"{STATE_DIR}/hwcaps": FileState(
            addon_config.config_text(
                arch=context.arch,
                profiles=profiles,
                packages=[p.name for p in source.variant_packages(context.arch)],
                layout=options.layout,
                split_packages=[lib.name for lib in libraries] if context.split else [],
                variant_env=options.variant_env,
                make_vars=options.variant_make_vars,
                control_sha256=None,
            ).encode(),
            0o644,
        ),
    }
    for static, rel in EMBEDDED.items():
        files[rel] = FileState(addon_config.static_file(static), 0o644)
    return files


def _changelog(
    originals: Originals, suffix: str, levels: Sequence[str]
) -> tuple[FileState, str, str]:
    """debian/changelog with the new entry, the entry's date and its author."""
    changelog = originals.content("debian/changelog")
    # converting again keeps the entry's date and author: same options, same bytes
    date = author = None
    previous = originals.manifest
    if previous is not None and previous.version_suffix == suffix:
        date, author = previous.changelog_date, previous.changelog_author
    date = date or email.utils.formatdate(time.time())
    author = author or changelog_author(changelog.data.decode())
    text = changelog_entry(changelog.data.decode(), suffix, levels, date, author)
    return FileState(text.encode(), changelog.mode), date, author


def _split_packages(
    source: SourcePackage, libraries: Sequence[BinaryPackage], levels: Sequence[str]
) -> tuple[SplitPackage, ...]:
    """One package per library and level; refused if debian/control has one of that name."""
    taken = {p.name for p in source.packages}
    split = []
    for lib in libraries:
        for level in levels:
            package = SplitPackage.of(lib, level)
            if package.name in taken:
                raise SourcePackageError(
                    f"debian/control already has a package named {package.name}",
                    hint="use --layout inline",
                )
            split.append(package)
    return tuple(split)


def _check_quotable(profiles: Sequence[Profile]) -> None:
    """The embedded shell helpers put each level's flags in single quotes."""
    for profile in profiles:
        cflags, ldflags = profile.flags_for("gcc")
        for flag in (*cflags, *ldflags):
            if "'" in flag or "\n" in flag:
                raise UsageError(f"profile '{profile.name}': flag {flag!r} cannot be quoted for sh")


def _split_files(originals: Originals, context: TemplateContext) -> Files:
    """debian/control with the split packages' stanzas, and their triggers and overrides."""
    control = originals.content("debian/control")
    text = control.data.decode()
    if not text.endswith("\n"):
        text += "\n"
    text += render("control-split.j2", context).decode()
    files: Files = {"debian/control": FileState(text.encode(), control.mode)}
    triggers = render("triggers.j2", context)
    overrides = render("lintian-overrides.j2", context)
    for package in context.split:
        files[f"debian/{package.name}.triggers"] = FileState(triggers, 0o644)
        files[f"debian/{package.name}.lintian-overrides"] = FileState(overrides, 0o644)
    return files


def _keep_originals(files: Files, originals: Originals) -> dict[str, Entry]:
    """Entries for the files changed outside STATE_DIR; adds their stored originals to ``files``."""
    entries: dict[str, Entry] = {}
    for rel in [r for r in files if not r.startswith(f"{STATE_DIR}/")]:
        wanted = files[rel]
        original = originals.state(rel)
        if wanted is None or wanted == original:
            continue  # what a previous addon-mode conversion changed, back as it was
        if original is None:
            entries[rel] = Entry(original=None, sha256=wanted.sha256)
            continue
        store = MAINTAINER_RULES if rel == "debian/rules" else f"{ORIGINALS}/{rel}"
        if original.link is not None:
            # the store is a link to the same file, so the wrapper includes the
            # maintainer's rules wherever they live
            files[store] = FileState(b"", 0, relink(original.link, rel, store))
            entries[rel] = Entry(original=store, sha256=wanted.sha256,
                                 original_link=original.link)
            continue
        files[store] = original if rel == "debian/rules" else FileState(original.data, 0o644)
        entries[rel] = Entry(original=store, sha256=wanted.sha256,
                             original_sha256=original.sha256, original_mode=original.mode)
    return entries
