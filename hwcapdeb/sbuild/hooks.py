"""Convert inside an sbuild run: a host-side hook plus a shell-only step in the chroot.

The build chroot has neither python3 nor hwcapdeb, and sbuild has no host-side
hook between unpacking the source and building it.  So the work is split at
the two points sbuild does offer (sbuild(1), "EXTERNAL COMMANDS"):

1. ``pre-build-commands`` run on the host with ``%SBUILD_CHROOT_EXEC`` (a
   command that runs its arguments inside the build chroot) and
   ``%SBUILD_DSC`` (the .dsc path, or ``NAME_VERSION``).  :func:`prepare`
   gets the same source sbuild will build (the .dsc on the host, or
   ``apt-get source`` run *in the chroot*, so the chroot's own archive decides
   the files), unpacks and converts it on the host with hwcapdeb's converter,
   and pipes into the chroot: a tar of the files the conversion added or
   changed, the list of files it removed, the identity it converted, and the
   POSIX shell script :data:`APPLY_SCRIPT_TEXT`.
2. ``starting-build-commands`` run in the chroot, after the build-dependencies
   are installed: ``/bin/sh /var/lib/hwcapdeb/apply %SBUILD_PKGBUILD_DIR``
   checks that sbuild unpacked the same source and version (a binNMU suffix
   is fine) and applies the delta with ``tar``.  Only changed files travel,
   so what sbuild itself wrote (a binNMU changelog entry) stays.

Conversion only touches debian/, so a delta of debian/ is the whole change.
Build-dependencies the conversion adds to debian/control are installed by the
apply step with apt-get (sbuild installed the .dsc's before it).
"""

from __future__ import annotations

import filecmp
import io
import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import Deb822, Dsc

from hwcapdeb.builders.dpkg import source_identity
from hwcapdeb.errors import ExternalCommandError, InputError, UsageError
from hwcapdeb.profiles import Profile, ProfileRegistry
from hwcapdeb.sbuild.rc import CHROOT_STATE_DIR
from hwcapdeb.source import unpack_dsc
from hwcapdeb.validate import check_package_name, read_bytes, read_text

#: Runs in the chroot as root (sbuild's starting-build-commands): sh, tar,
#: dpkg-parsechangelog and apt-get only.  Exit status non-zero fails the build.
APPLY_SCRIPT_TEXT = r"""#!/bin/sh
# hwcapdeb: apply the conversion prepared on the host (hwcapdeb sbuild-hook prepare)
set -eu
state=${HWCAPDEB_STATE_DIR:-__STATE__}
dir=${1:?usage: apply PKGBUILD_DIR}
fail() { echo "hwcapdeb: error: $*" >&2; exit 1; }
[ -f "$state/delta.tar" ] || fail "no prepared conversion in the chroot; add the \
'hwcapdeb sbuild-hook prepare' pre-build-commands entry ('hwcapdeb sbuild-config --profile ...')"
cd "$dir"
want=$(cat "$state/identity")
have="$(dpkg-parsechangelog -S Source)_$(dpkg-parsechangelog -S Version)"
case "$have" in
  "$want"|"$want"[+~]*) ;;  # sbuild's binNMU or --append-to-version suffix
  *) fail "the prepared conversion is for $want, but sbuild unpacked $have" ;;
esac
owner=$(stat -c %u:%g debian)
tar --no-same-owner -xf "$state/delta.tar"
while IFS= read -r gone; do [ -z "$gone" ] || rm -rf -- "$gone"; done < "$state/removed"
chown -R "$owner" debian
if [ -f "$state/dh-hwcaps.deb" ]; then
  # addon mode: the package build-depends on dh-sequence-hwcaps, which this provides
  echo "hwcapdeb: installing dh-hwcaps (addon mode)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    "$state/dh-hwcaps.deb" || fail "cannot install dh-hwcaps from $state/dh-hwcaps.deb"
fi
if [ -s "$state/build-depends" ]; then
  echo "hwcapdeb: installing build-dependencies the conversion added: $(cat "$state/build-depends")"
  # shellcheck disable=SC2046
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    $(cat "$state/build-depends") || fail "cannot install $(cat "$state/build-depends")"
fi
echo "hwcapdeb: converted $have for $(cat "$state/profiles") ($(wc -l < "$state/changed") files)"
""".replace("__STATE__", CHROOT_STATE_DIR)


@dataclass(frozen=True)
class Delta:
    """What a conversion did to debian/: files added or changed, files removed."""

    changed: tuple[str, ...]  # paths relative to the tree, e.g. "debian/rules"
    removed: tuple[str, ...]


def _files(root: Path) -> dict[str, Path]:
    """debian/-relative names (``debian/rules``) of every file under ``root``."""
    return {
        "debian/" + str(p.relative_to(root)): p
        for p in sorted(root.rglob("*"))
        if p.is_file() or p.is_symlink()
    }


def diff_debian(before: Path, after: Path) -> Delta:
    """Compare two debian/ directories: contents, modes and symlink targets."""
    old, new = _files(before), _files(after)
    changed = []
    for name, path in new.items():
        prev = old.get(name)
        if prev is None or prev.is_symlink() != path.is_symlink():
            changed.append(name)
        elif path.is_symlink():
            if os.readlink(prev) != os.readlink(path):
                changed.append(name)
        elif prev.stat().st_mode != path.stat().st_mode or not filecmp.cmp(
            prev, path, shallow=False
        ):
            changed.append(name)
    removed = [name for name in old if name not in new]
    return Delta(tuple(changed), tuple(removed))


def added_build_depends(before: Path, after: Path) -> list[str]:
    """Build-Depends relations the conversion added to debian/control (as written)."""

    def relations(control: Path) -> list[str]:
        with control.open(encoding="utf-8") as fh:
            source = next(iter(Deb822.iter_paragraphs(fh)), None)
        if source is None:
            return []
        fields = ("Build-Depends", "Build-Depends-Arch")
        text = ",".join(source.get(f, "") for f in fields)
        return [r.strip() for r in text.split(",") if r.strip()]

    old = set(relations(before / "control"))
    return [r for r in relations(after / "control") if r not in old]


def _apt_names(relations: Sequence[str]) -> list[str]:
    """Package names apt-get can install for simple relations (first alternative)."""
    names = []
    for relation in relations:
        first = relation.split("|")[0].strip()
        name = first.split("(")[0].split("[")[0].split("<")[0].strip()
        if name:
            names.append(name)
    return names


def chroot_exec(words: Sequence[str]) -> list[str]:
    """%SBUILD_CHROOT_EXEC as an argv.

    sbuild runs hook commands through /bin/sh, so the shell-escaped escape
    arrives already split into words; one word holding spaces is split here.
    Both of sbuild's chroot modes end that command with ``--``: anything else
    (the unsubstituted escape, a stray word) is refused rather than run on
    the host.
    """
    argv = list(words)
    if len(argv) == 1:
        argv = shlex.split(argv[0])
    if len(argv) < 2 or argv[-1] != "--":
        raise UsageError(
            "no chroot command given (sbuild substitutes %SBUILD_CHROOT_EXEC only in "
            "pre-build-commands, as the last words of the hook)",
            hint="run 'hwcapdeb sbuild-hook prepare' from pre-build-commands as "
            "'hwcapdeb sbuild-config --profile ...' writes it",
        )
    return argv


def fetch_in_chroot(spec: str, exec_argv: Sequence[str], dest: Path) -> Path:
    """``apt-get source`` NAME_VERSION inside the chroot; the files land in ``dest``."""
    name, _, version = spec.partition("_")
    target = f"{name}={version}" if version else name
    script = (
        'set -e; d=$(mktemp -d); cd "$d"; apt-get -q update >&2; '
        f"apt-get -q source --download-only --only-source {shlex.quote(target)} >&2; "
        "tar -c ."
    )
    proc = subprocess.run([*exec_argv, "sh", "-c", script], capture_output=True, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise ExternalCommandError(
            f"apt-get source {target} failed in the chroot: {last}",
            hint="the chroot needs a deb-src line for its suite (see 'hwcapdeb sbuild-config')",
        )
    with tarfile.open(fileobj=io.BytesIO(proc.stdout)) as tar:
        _extract_plain_files(tar, dest)
    dscs = sorted(dest.glob(f"{name}_*.dsc"))
    if not dscs:
        raise ExternalCommandError(f"apt-get source {target} in the chroot gave no .dsc")
    return dscs[0]


def _extract_plain_files(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract the regular files of ``tar`` (apt-get source output) under ``dest`` only."""
    for member in tar.getmembers():
        name = Path(member.name)
        if not member.isfile() or name.is_absolute() or ".." in name.parts:
            continue  # directories are recreated; nothing may land outside dest
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        source = tar.extractfile(member)
        if source is not None:
            target.write_bytes(source.read())


def unpack(dsc: Path, dest: Path) -> Path:
    control = Dsc(read_bytes(dsc, what=".dsc").decode("utf-8", errors="replace"))
    # the name becomes a path: Policy 5.6.1 keeps it one component
    source = check_package_name(control.get("Source", ""), field="Source", where=str(dsc))
    return unpack_dsc(dsc, dest / f"{source}-src", ["--no-copy", "--no-check"])


@dataclass(frozen=True)
class CampaignOptions:
    """Conversion options of a campaign: for every package, then per source package."""

    layout: str = "inline"
    variant_make_vars: tuple[str, ...] = ()
    variant_env: tuple[str, ...] = ()
    package_options: Path | None = None  # deb822 file: per-source overrides
    #: hwcapdeb convert --mode; addon sends the dh-hwcaps .deb into the chroot
    mode: str = "embed"
    dh_hwcaps_deb: Path | None = None  # None: hwcapdeb.builders.dh_hwcaps.find_deb()

    def for_source(self, source: str) -> CampaignOptions:
        """These options with the stanza ``Source: <source>`` of package_options applied."""
        if self.package_options is None:
            return self
        stanza = package_stanza(self.package_options, source)
        if stanza is None:
            return self
        return CampaignOptions(
            layout=stanza.get("Layout", self.layout).strip(),
            variant_make_vars=self.variant_make_vars
            + tuple(stanza.get("Variant-Make-Vars", "").split()),
            variant_env=self.variant_env + tuple(stanza.get("Variant-Env", "").split()),
            mode=self.mode,
            dh_hwcaps_deb=self.dh_hwcaps_deb,
        )


#: fields a package-options stanza may have (anything else is a typo to report)
PACKAGE_OPTION_FIELDS = ("Source", "Layout", "Variant-Make-Vars", "Variant-Env", "Comment",
                         "Bench-Command", "Bench-Options")  # Bench-*: hwcapdeb.bench.after_build


def package_stanza(path: Path, source: str) -> Deb822 | None:
    """The stanza of ``path`` for ``source`` (deb822, one stanza per source package)."""
    text = read_text(path, what="package options file")
    stanzas = list(Deb822.iter_paragraphs(text.splitlines(keepends=True)))
    for stanza in stanzas:
        unknown = [k for k in stanza if k not in PACKAGE_OPTION_FIELDS]
        if unknown or "Source" not in stanza:
            raise InputError(
                f"{path}: stanza {dict(stanza)!r} has "
                + (f"unknown field {unknown[0]}" if unknown else "no Source field"),
                hint=f"fields are {', '.join(PACKAGE_OPTION_FIELDS)}",
            )
        if stanza["Source"].strip() == source:
            return stanza
    return None


def convert_tree(
    tree: Path, profiles: Sequence[Profile], options: CampaignOptions | None = None
) -> None:
    # Imported late: the other hook steps do not convert.  The call `hwcapdeb build` makes.
    from hwcapdeb.convert.conversion import convert
    from hwcapdeb.convert.options import ConvertOptions

    opts = options or CampaignOptions()
    convert(
        tree,
        ConvertOptions(
            profiles=tuple(profiles),
            layout=opts.layout,
            variant_make_vars=opts.variant_make_vars,
            variant_env=opts.variant_env,
            mode=opts.mode,
        ),
    )


@dataclass(frozen=True)
class Prepared:
    """What :func:`prepare` computed, and the files it sends into the chroot."""

    identity: str  # SOURCE_VERSION (no epoch) that was converted
    delta: Delta
    build_depends: tuple[str, ...]
    files: dict[str, bytes]  # name in CHROOT_STATE_DIR -> content


def prepare_files(
    dsc: Path,
    profiles: Sequence[Profile],
    work: Path,
    options: CampaignOptions | None = None,
) -> Prepared:
    """Unpack and convert ``dsc`` in ``work``; the payload for the chroot."""
    tree = unpack(dsc, work)
    name, version = source_identity(tree)
    before = work / "debian.orig"
    shutil.copytree(tree / "debian", before, symlinks=True)
    opts = (options or CampaignOptions()).for_source(name)
    convert_tree(tree, profiles, opts)
    delta = diff_debian(before, tree / "debian")
    depends = tuple(_apt_names(added_build_depends(before, tree / "debian")))
    extra = addon_payload(tree, opts)
    if extra:
        depends = tuple(d for d in depends if d != "dh-sequence-hwcaps")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel in delta.changed:
            tar.add(tree / rel, arcname=rel, recursive=False)
    identity = f"{name}_{version}"
    files = {
        "delta.tar": buf.getvalue(),
        "removed": "".join(f"{r}\n" for r in delta.removed).encode(),
        "changed": "".join(f"{r}\n" for r in delta.changed).encode(),
        "identity": f"{identity}\n".encode(),
        "profiles": (",".join(p.name for p in profiles) + "\n").encode(),
        "build-depends": " ".join(depends).encode(),
        "apply": APPLY_SCRIPT_TEXT.encode(),
        **extra,
    }
    return Prepared(identity, delta, depends, files)


def addon_payload(tree: Path, options: CampaignOptions) -> dict[str, bytes]:
    """For a tree converted in addon mode: the dh-hwcaps .deb the chroot installs."""
    if not (tree / "debian" / "hwcaps").is_file() or (tree / "debian" / "hwcapdeb").exists():
        return {}
    from hwcapdeb.builders import dh_hwcaps

    deb = options.dh_hwcaps_deb or dh_hwcaps.find_deb()
    return {"dh-hwcaps.deb": Path(deb).read_bytes()}


def send_to_chroot(files: dict[str, bytes], exec_argv: Sequence[str]) -> None:
    """Write ``files`` into CHROOT_STATE_DIR inside the chroot (one tar through the pipe)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name == "apply" else 0o644
            tar.addfile(info, io.BytesIO(data))
    script = f"mkdir -p {CHROOT_STATE_DIR} && tar --no-same-owner -x -C {CHROOT_STATE_DIR}"
    proc = subprocess.run(
        [*exec_argv, "sh", "-c", script], input=buf.getvalue(), capture_output=True, check=False
    )
    if proc.returncode != 0:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise ExternalCommandError(f"cannot write {CHROOT_STATE_DIR} in the chroot: {last}")


def prepare(
    dsc_spec: str,
    exec_words: Sequence[str],
    profile_names: Sequence[str],
    arch: str,
    options: CampaignOptions | None = None,
) -> Prepared:
    """The pre-build hook: convert what sbuild is about to build, stage it in the chroot."""
    if not dsc_spec or dsc_spec.startswith("%"):
        raise UsageError(
            "sbuild does not know the version yet (it was given a bare source name), so "
            "there is nothing to convert before the build",
            hint="give sbuild NAME_VERSION (e.g. xxhash_0.8.1-1) or a .dsc file",
        )
    exec_argv = chroot_exec(exec_words)
    profiles = ProfileRegistry().resolve_many(list(profile_names), arch)
    if not profiles:
        raise UsageError(
            "no profile given", hint="pass --profile x86-64-v3 (see 'hwcapdeb profiles')"
        )
    with tempfile.TemporaryDirectory(prefix="hwcapdeb-sbuild-hook-") as scratch:
        work = Path(scratch)
        candidate = Path(dsc_spec)
        if candidate.suffix == ".dsc" and candidate.is_file():
            dsc = candidate
        elif candidate.suffix == ".dsc":
            raise InputError(f"{dsc_spec} does not exist on the host")
        else:
            (work / "fetched").mkdir()
            dsc = fetch_in_chroot(dsc_spec, exec_argv, work / "fetched")
        prepared = prepare_files(dsc, profiles, work, options)
    send_to_chroot(prepared.files, exec_argv)
    return prepared
