"""Which ld.so answers: the loader of the release the packages were built for.

A library built on a newer release may need glibc symbols the host's loader
does not have (``version `GLIBC_2.38' not found``); its search rules may
differ too (legacy hwcaps directories: glibc <= 2.36).  The ground truth is
the target's own ld.so, which runs directly on an older host.  Sources, in
order (:func:`select_loader`):

1. ``--loader-root PATH``: an unpacked root holding ld.so and libc.so.6, or a
   chroot tarball (its loader files are extracted into the cache);
2. the sbuild chroot tarball of the build (``~/.cache/sbuild/DIST-ARCH.tar.*``
   for the .changes' Distribution), if its libc6 is the one the .buildinfo names;
3. the ``libc6`` of the .buildinfo's Installed-Build-Depends, fetched from the
   archive's pool and unpacked into ``~/.cache/hwcapdeb/loaders/VERSION-ARCH/``;
4. the host's loader (also when the target's glibc release is the host's).

A libc6 that cannot be fetched is a warning: the host answers and says why.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from debian import deb822
from hwcapdeb.errors import InputError
from hwcapdeb.profiles import Architecture, architecture

HOST, LOADER_ROOT, TARBALL, ARCHIVE = "host", "loader-root", "chroot-tarball", "archive"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: files the probe's run of true(1) and ordinary libraries need from the target's libc
#: (measured: ld.so plus libc.so.6 run true; the rest are common DT_NEEDED entries)
LOADER_FILES = ("libc.so.6", "libm.so.6", "libmvec.so.1", "libpthread.so.0", "libdl.so.2",
                "librt.so.1", "libresolv.so.2", "libgcc_s.so.1", "libstdc++.so.6*")
_VERSION_LINE = re.compile(r"version (\d+\.\d+)")
_LIBC6 = re.compile(r"(?:^|,)\s*libc6\s*\(=\s*([^)\s]+)\s*\)")
#: Debian policy 5.6.12 version and a distribution/architecture name: they become paths
_DEB_VERSION = re.compile(r"^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")
_MAX_RECORD = 1 << 20  # a .changes or .buildinfo larger than this is not one


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hwcapdeb" / "loaders"


def sbuild_dir() -> Path:
    return Path.home() / ".cache" / "sbuild"


@dataclass(frozen=True)
class TargetLoader:
    """One ld.so to ask, the root it lives in and where it came from."""

    ld_so: Path
    root: Path
    libdir: Path  # the directory holding its libc.so.6
    glibc: str  # "2.43"
    source: str  # HOST, LOADER_ROOT, TARBALL or ARCHIVE
    detail: str  # where exactly, or why the host answers
    libc6: str | None = None  # the Debian libc6 version, when known
    warning: str | None = None  # a wanted target loader could not be had

    @property
    def is_host(self) -> bool:
        return self.source == HOST

    def library_path(self) -> list[Path]:
        """Appended to --library-path so true(1) and the library's own libc deps resolve
        against the target's libc (else the host's, found through its ld.so.cache)."""
        return [] if self.is_host else [self.libdir]

    def describe(self) -> str:
        return f"glibc {self.glibc} ({self.detail}; {self.ld_so})"

    def to_json(self) -> dict[str, Any]:
        return {"ld_so": str(self.ld_so), "root": str(self.root), "glibc": self.glibc,
                "source": self.source, "detail": self.detail, "libc6": self.libc6,
                "warning": self.warning}


def glibc_of(ld_so: Path, what: str) -> str:
    """The release ``ld.so --version`` names; InputError if it does not run."""
    try:
        out = subprocess.run([str(ld_so), "--version"], capture_output=True, text=True,
                             timeout=30, env={"PATH": os.environ.get("PATH", "")})
    except OSError as err:
        hint = ("unpack the libc6 .deb with dpkg-deb -x, which keeps its modes"
                if isinstance(err, PermissionError) else
                "give a root of this machine's architecture")
        raise InputError(f"{what}: {ld_so} is not runnable here ({err.strerror})",
                         hint=hint) from None
    except subprocess.TimeoutExpired:
        raise InputError(f"{what}: {ld_so} --version did not finish") from None
    found = _VERSION_LINE.search(out.stdout.splitlines()[0] if out.stdout else "")
    if out.returncode != 0 or found is None:
        first = (out.stderr.strip().splitlines() or ["no version line"])[0]
        raise InputError(f"{what}: {ld_so} is not a working glibc loader ({first})",
                         hint="give a root holding an unpacked libc6")
    return found.group(1)


def host_loader(arch: Architecture, detail: str = "this machine's loader",
                warning: str | None = None) -> TargetLoader:
    ld_so = Path(arch.loader or "/lib64/ld-linux-x86-64.so.2")
    return TargetLoader(ld_so, Path("/"), Path("/lib") / arch.triplet,
                        _host_glibc(str(ld_so)), HOST, detail, warning=warning)


@functools.cache
def _host_glibc(ld_so: str) -> str:
    return glibc_of(Path(ld_so), "the host's loader")


def _elf_machine(path: Path) -> int | None:
    with contextlib.suppress(OSError), path.open("rb") as fh:
        head = fh.read(20)
        if head[:4] == b"\x7fELF" and len(head) == 20:
            return int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return None


def _inside(path: Path, root: Path) -> bool:
    """A regular file that stays in ``root`` (an absolute link would ask the host's)."""
    try:
        return path.is_file() and path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):
        return False


def from_root(root: Path, arch: Architecture, source: str = LOADER_ROOT,
              detail: str | None = None, libc6: str | None = None) -> TargetLoader:
    """The loader of an unpacked root; InputError (exit 2) if there is none that runs here."""
    what = f"--loader-root {root}" if source == LOADER_ROOT else str(root)
    if not root.is_dir():
        raise InputError(f"{what}: not a directory or chroot tarball",
                         hint="give an unpacked root holding ld.so and libc.so.6")
    rel = (arch.loader or "").lstrip("/")
    candidates = [root / rel, root / "usr" / rel, root / "lib" / arch.triplet / Path(rel).name,
                  root / "usr/lib" / arch.triplet / Path(rel).name]
    ld_so = next((c for c in candidates if rel and _inside(c, root)), None)
    if ld_so is None:
        raise InputError(f"{what}: no {arch.loader} in it",
                         hint=f"unpack a libc6 .deb of {arch.arch} there (dpkg-deb -x)")
    machine = _elf_machine(ld_so)
    if machine is None:
        raise InputError(f"{what}: {ld_so} is not an ELF file",
                         hint="give a root holding an unpacked libc6")
    if arch.elf is not None and machine != arch.elf.e_machine:
        raise InputError(f"{what}: {ld_so.name} is not an {arch.arch} loader "
                         f"(ELF machine {machine})", hint="give a root of the packages' "
                         "architecture")
    libdir = next((d for d in (root / "lib" / arch.triplet, root / "usr/lib" / arch.triplet)
                   if _inside(d / "libc.so.6", root)), None)
    if libdir is None:
        raise InputError(f"{what}: no libc.so.6 beside {ld_so.name}",
                         hint="unpack the whole libc6 .deb there")
    glibc = glibc_of(ld_so, what)
    return TargetLoader(ld_so, root, libdir, glibc, source, detail or what, libc6)


# --- chroot tarballs ----------------------------------------------------------------------


def _tar_members(arch: Architecture) -> list[str]:
    name = Path(arch.loader or "").name
    files = [f"*/{arch.triplet}/{f}" for f in (name, *LOADER_FILES)]
    return [*files, f"*/lib64/{name}", "./var/lib/dpkg/status", "./etc/apt/sources.list",
            "./etc/apt/sources.list.d/*"]


def _status_libc6(root: Path) -> str | None:
    status = root / "var/lib/dpkg/status"
    if not status.is_file():
        return None
    with status.open(encoding="utf-8", errors="replace") as fh:
        for para in deb822.Deb822.iter_paragraphs(fh):
            if para.get("Package") == "libc6" and "installed" in para.get("Status", ""):
                return para.get("Version")
    return None


def extract_tarball(tarball: Path, arch: Architecture, cache: Path | None = None) -> Path:
    """The loader files of a chroot tarball, unpacked once into the cache
    (``loaders/VERSION-ARCH``, keyed by the tarball's size and mtime in ``tarballs.json``).
    InputError if it cannot be done."""
    try:
        return _extract_tarball(tarball, arch, cache or cache_dir())
    except (OSError, subprocess.SubprocessError) as err:
        raise InputError(f"{tarball}: cannot extract its loader ({err})",
                         hint=f"check that {cache or cache_dir()} is writable") from None


def _extract_tarball(tarball: Path, arch: Architecture, cache: Path) -> Path:
    cache.mkdir(parents=True, exist_ok=True)
    index_file = cache / "tarballs.json"
    try:
        st = tarball.stat()
    except OSError as err:
        raise InputError(f"{tarball}: {err.strerror}") from None
    key = f"{tarball.resolve()}:{st.st_size}:{st.st_mtime_ns}"
    index: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        index = json.loads(index_file.read_text())
    known = index.get(key)
    if known and (cache / known).is_dir():
        return cache / known
    with tempfile.TemporaryDirectory(prefix="tar-", dir=cache) as tmp:
        out = subprocess.run(
            ["tar", "-xf", str(tarball), "-C", tmp, "--wildcards", "--no-same-owner",
             "--ignore-failed-read", *_tar_members(arch)],
            capture_output=True, text=True, timeout=600)
        libc6 = _status_libc6(Path(tmp))
        if libc6 is not None and not _DEB_VERSION.match(libc6):
            raise InputError(f"{tarball}: its libc6 version {libc6[:40]!r} is not a Debian "
                             "version", hint="give an sbuild chroot tarball made by mmdebstrap")
        if libc6 is None:
            first = (out.stderr.strip().splitlines() or ["no libc6 in its dpkg status"])[0]
            raise InputError(f"{tarball}: not a chroot tarball with libc6 ({first})",
                             hint="give an unpacked root or an sbuild chroot tarball")
        dest = cache / f"{libc6}-{arch.arch}"
        status = dest / "var/lib/dpkg/status"
        if status.is_file() and "X-Fetched-From" in status.read_text(errors="replace"):
            shutil.rmtree(dest)  # a libc6 alone: the chroot's files add libstdc++ and libgcc_s
        if _settle(Path(tmp), dest):
            Path(tmp).mkdir()  # for TemporaryDirectory's cleanup
    index[key] = dest.name
    with contextlib.suppress(OSError):
        index_file.write_text(json.dumps(index, indent=1))
    return dest


def from_tarball(tarball: Path, arch: Architecture, source: str = TARBALL,
                 cache: Path | None = None) -> TargetLoader:
    root = extract_tarball(tarball, arch, cache)
    return from_root(root, arch, source, f"chroot tarball {tarball}", _status_libc6(root))


# --- the archive ---------------------------------------------------------------------------


def mirror_from_apt(etc: Path = Path("/etc/apt"), default: str | None = DEFAULT_MIRROR) -> str:
    """The first Debian archive URI of apt's sources (not security), else ``default``
    (deb.debian.org); ``$HWCAPDEB_MIRROR`` overrides both."""
    override = os.environ.get("HWCAPDEB_MIRROR")
    if override:
        return override.rstrip("/")
    files = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*"))]
    for path in files:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            for uri in re.findall(r"(?:^deb(?:\s+\[[^\]]*\])?\s+|^URIs:\s*)(\S+)",
                                  path.read_text(), re.M):
                if uri.startswith("http") and "security" not in uri:
                    return uri.rstrip("/")
    return default or ""


def libc6_url(version: str, arch: str, mirror: str) -> str:
    """Pool URL of libc6 (source glibc); the epoch is not part of file names."""
    bare = version.split(":", 1)[-1]
    return f"{mirror}/pool/main/g/glibc/libc6_{bare}_{arch}.deb"


def _settle(src: Path, dest: Path) -> bool:
    """Move a finished extraction into place; another run may have been first (then its
    copy is kept).  True if ``src`` was moved."""
    if dest.is_dir():
        return False
    try:
        os.rename(src, dest)
    except OSError:
        if not dest.is_dir():
            raise
        return False
    return True


def fetch_libc6(version: str, arch: Architecture, *, mirror: str | None = None,
                cache: Path | None = None, timeout: float = 60) -> Path:
    """Unpacked libc6 VERSION in the cache, downloaded once; OSError if it cannot be had."""
    cache = cache or cache_dir()
    dest = cache / f"{version}-{arch.arch}"
    if (dest / "var/lib/dpkg/status").is_file() or any(dest.glob("*/lib*/*/libc.so.6")):
        return dest
    cache.mkdir(parents=True, exist_ok=True)
    url = libc6_url(version, arch.arch, mirror or mirror_from_apt())
    with tempfile.TemporaryDirectory(prefix="fetch-", dir=cache) as tmp:
        deb = Path(tmp) / "libc6.deb"
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp, deb.open("wb") as fh:
                shutil.copyfileobj(resp, fh)
        except (OSError, ValueError, http.client.HTTPException) as err:
            raise OSError(f"cannot fetch {url}: {getattr(err, 'reason', err)}") from None
        tree = Path(tmp) / "root"
        try:
            out = subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], capture_output=True,
                                 text=True, timeout=120)
        except subprocess.SubprocessError as err:
            raise OSError(f"{url}: dpkg-deb -x failed ({err})") from None
        if out.returncode != 0:
            raise OSError(f"{url}: not a .deb ({out.stderr.strip()[:100]})")
        status = tree / "var/lib/dpkg"
        status.mkdir(parents=True, exist_ok=True)
        (status / "status").write_text(f"Package: libc6\nStatus: install ok installed\n"
                                       f"Version: {version}\nX-Fetched-From: {url}\n")
        _settle(tree, dest)
    return dest


# --- build records -------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildRecord:
    """What a .changes and its .buildinfo say about the build's system."""

    distribution: str | None
    arch: str | None
    libc6: str | None
    origin: Path


def _expand_dirs(paths: Sequence[Path]) -> list[Path]:
    """A build's output directory stands for its .changes and .debs (as in verify)."""
    result: list[Path] = []
    for path in paths:
        if path.is_dir():
            with contextlib.suppress(OSError):
                result.extend(sorted(p for p in path.iterdir() if p.suffix in (".changes", ".deb")
                                     and not p.name.endswith("_source.changes")))
        else:
            result.append(path)
    return result


def build_record(paths: Sequence[Path]) -> BuildRecord | None:
    """From the first .changes among ``paths`` (or a .buildinfo beside a .deb); a
    directory stands for the .changes and .deb files directly in it."""
    paths = _expand_dirs(paths)
    for path in paths:
        if path.suffix == ".changes" and _small_file(path):
            try:
                with path.open(encoding="utf-8", errors="replace") as fh:
                    changes = deb822.Changes(fh)
            except (OSError, ValueError):
                return None
            arches = [a for a in changes.get("Architecture", "").split()
                      if a not in ("source", "all")]
            infos = [path.parent / f["name"] for f in changes.get("Files", [])
                     if f.get("name", "").endswith(".buildinfo")
                     and "/" not in f["name"]]
            libc6 = next((v for v in map(_buildinfo_libc6, infos) if v), None)
            dist = [d for d in (changes.get("Distribution") or "").split() if _NAME.match(d)]
            arches = [a for a in arches if _NAME.match(a)]
            return BuildRecord(dist[0] if dist else None, arches[0] if arches else None,
                               libc6, path)
    for path in paths:
        if path.suffix == ".deb" and path.is_file():
            parts = path.name[:-4].split("_")
            if len(parts) != 3 or not _NAME.match(parts[2]):
                continue
            for info in sorted(path.parent.glob(f"*_{parts[2]}.buildinfo")):
                binaries = _buildinfo_field(info, "Binary").split()
                if parts[0] in binaries:
                    return BuildRecord(None, parts[2], _buildinfo_libc6(info), info)
    return None


def _small_file(path: Path) -> bool:
    """A regular file of sane size (never a FIFO or device: they would block or not end)."""
    try:
        return path.is_file() and path.stat().st_size <= _MAX_RECORD
    except OSError:
        return False


def _buildinfo_field(path: Path, name: str) -> str:
    if not _small_file(path):
        return ""
    try:
        with path.open(encoding="utf-8", errors="replace") as fh:
            return str(deb822.Deb822(fh).get(name, ""))
    except (OSError, ValueError):
        return ""


def _buildinfo_libc6(path: Path) -> str | None:
    found = _LIBC6.search(_buildinfo_field(path, "Installed-Build-Depends").replace("\n", " "))
    if found is None or not _DEB_VERSION.match(found.group(1)):
        return None  # the version becomes a file name: nothing but a Debian version
    return found.group(1)


def _upstream(version: str) -> str:
    """2.43-7 -> 2.43 (the glibc release of a Debian libc6 version)."""
    bare = version.split(":", 1)[-1]
    m = re.match(r"(\d+\.\d+)", bare)
    return m.group(1) if m else bare


def _small_ok(path: Path) -> bool:
    """A non-empty regular file (a tarball being written is empty at first)."""
    with contextlib.suppress(OSError):
        return path.is_file() and path.stat().st_size > 0
    return False


def _tarball_for(dist: str, arch: str, directory: Path) -> Path | None:
    for candidate in sorted(directory.glob(f"{dist}-{arch}.tar*")):
        with contextlib.suppress(OSError):
            if candidate.is_file() and candidate.stat().st_size > 0:
                return candidate
    return None


def select_loader(
    paths: Sequence[Path] = (),
    arch_name: str = "amd64",
    *,
    loader_root: Path | None = None,
    fetch: bool = True,
    cache: Path | None = None,
    sbuild_cache: Path | None = None,
    warn: Any = None,
) -> TargetLoader:
    """The loader to ask for packages at ``paths`` (see the module's docstring).

    ``warn(text)`` is called once when a wanted target loader cannot be had.
    """
    arch = architecture(arch_name)
    if loader_root is not None:
        if loader_root.is_file():
            found = from_tarball(loader_root, arch, LOADER_ROOT, cache)
            return replace(found, detail=f"--loader-root {loader_root}")
        return from_root(loader_root, arch)
    host = host_loader(arch)
    record = build_record(paths)
    if record is None or (record.arch and record.arch != arch_name):
        return host
    if record.libc6 is not None and _upstream(record.libc6) == host.glibc:
        return _same(host, f"libc6 {record.libc6} of {record.origin.name}")
    chroots = sbuild_cache or sbuild_dir()
    tarball = _tarball_for(record.distribution, arch_name, chroots) \
        if record.distribution else None
    # the .changes' Distribution is the changelog's (UNRELEASED, or unstable built in
    # another chroot): when its tarball does not match, any chroot whose libc6 does
    others = sorted(p for p in chroots.glob(f"*-{arch_name}.tar*") if p != tarball) \
        if record.libc6 is not None and chroots.is_dir() else []
    mirror = None
    for candidate in [t for t in (tarball, *others) if t is not None and _small_ok(t)]:
        with contextlib.suppress(InputError):
            found = from_tarball(candidate, arch, TARBALL, cache)
            if record.libc6 is None or found.libc6 == record.libc6:
                return found if found.glibc != host.glibc else _same(host, found.detail)
            if candidate == tarball:
                mirror = mirror_from_apt(found.root / "etc/apt", default=None) or None
    if record.libc6 is None:
        return host
    try:
        if not fetch:
            raise OSError("fetching is off")
        root = fetch_libc6(record.libc6, arch, mirror=mirror, cache=cache)
        return from_root(root, arch, ARCHIVE, f"libc6 {record.libc6} from the archive "
                         f"(named by {record.origin.name})", record.libc6)
    except (OSError, InputError) as err:
        text = (f"the build used libc6 {record.libc6} (glibc {_upstream(record.libc6)}), "
                f"whose loader cannot be had ({err}); the host's glibc {host.glibc} answers")
        if warn is not None:
            warn(text)
        return host_loader(arch, "fallback: " + text, warning=text)


def _same(host: TargetLoader, what: str) -> TargetLoader:
    return replace(host, detail=f"the target's glibc ({what}) is the host's")
