"""Unpacking an untrusted .deb so that nothing lands outside its directory.

``tarfile``'s own extraction (even with ``filter="tar"``) lets a hard link
name any absolute path and then writes the next member of the same name
through it; ``dpkg-deb -x`` follows links the archive made itself.  Here
every member is checked before anything is written:

* names: relative, without ``..`` (an absolute or climbing name refuses the
  whole package: no sane .deb has one);
* parents: every directory on the way is a real directory made here, never a
  link (a member below a link refuses the package);
* files are created new (``O_EXCL | O_NOFOLLOW``) after removing what was
  there, so nothing is ever written through an existing link;
* hard links may only name a regular file unpacked before them;
* symbolic links are kept, with their targets rewritten to stay in the tree
  as if it were the root file system (an absolute ``/usr/lib/x`` becomes a
  relative link to the tree's ``usr/lib/x``; ``..`` stops at the top);
* devices, FIFOs and sockets are skipped; modes lose setuid, setgid and
  write bits for others; sizes and member counts are bounded.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import shutil
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

from debian.arfile import ArFile, ArMember

from debian import deb822
from hwcapdeb.errors import InputError
from hwcapdeb.validate import MAX_MEMBERS, MAX_TEXT_BYTES, MAX_UNPACKED_BYTES

_TAR_SUFFIXES = (".gz", ".xz", ".bz2", ".lzma", ".zst", "")


def _part(ar: ArFile, base: str, origin: Path) -> tuple[str, ArMember]:
    names = [f"{base}{s}" for s in _TAR_SUFFIXES if f"{base}{s}" in ar.getnames()]
    if len(names) != 1:
        raise InputError(f"{origin}: not a .deb (it has {len(names) or 'no'} {base} members)",
                         hint="check it with 'dpkg-deb --info'")
    return names[0], ar.getmember(names[0])


@contextlib.contextmanager
def _tar_stream(ar: ArFile, base: str, origin: Path, scratch: Path) -> Iterator[tarfile.TarFile]:
    """The member ``base``.tar.* of ``ar`` as a streaming TarFile (zstd through unzstd)."""
    name, member = _part(ar, base, origin)
    if not name.endswith(".zst"):
        with tarfile.open(fileobj=member, mode="r|*") as tar:  # type: ignore[call-overload]
            yield tar
        return
    # tarfile has no zstd: decompress as a stream, never into memory
    with open(scratch / f".{base}.zst.{os.getpid()}", "w+b") as raw:
        os.unlink(raw.name)  # a nameless scratch file: gone however this ends
        shutil.copyfileobj(member, raw)
        raw.seek(0)
        try:
            proc = subprocess.Popen(["unzstd", "--stdout", "--quiet"], stdin=raw,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        except OSError:
            raise InputError(f"{origin}: its {name} needs unzstd",
                             hint="install the zstd package") from None
        try:
            assert proc.stdout is not None
            with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
                yield tar
        finally:
            proc.kill()
            proc.wait()


def data_tar(ar: ArFile, origin: Path, scratch: Path) -> contextlib.AbstractContextManager[
        tarfile.TarFile]:
    """The data.tar.* member of a .deb as a streaming TarFile."""
    return _tar_stream(ar, "data.tar", origin, scratch)


def read_control(ar: ArFile, origin: Path, scratch: Path) -> deb822.Deb822:
    """The control file of a .deb (its size bounded, its text decoded leniently)."""
    with _tar_stream(ar, "control.tar", origin, scratch) as tar:
        for entry in tar:
            if posixpath.normpath(entry.name.lstrip("/")) != "control":
                continue
            if not entry.isreg():
                raise InputError(f"{origin}: its control file is not a regular file")
            if entry.size > MAX_TEXT_BYTES:
                raise InputError(f"{origin}: its control file is larger than "
                                 f"{MAX_TEXT_BYTES >> 20} MiB")
            fh = tar.extractfile(entry)
            data = fh.read(MAX_TEXT_BYTES + 1) if fh else b""
            return deb822.Deb822(data.decode("utf-8", errors="replace"))
    raise InputError(f"{origin}: not a .deb (no control file)",
                     hint="check it with 'dpkg-deb --info'")


class _Unpacker:
    """State of one extraction: the directories made so far and the bytes written."""

    def __init__(self, root: Path, origin: Path) -> None:
        self.root = root
        self.origin = origin
        self.dirs: set[str] = {""}  # relative paths known to be real directories made here
        self.files: set[str] = set()  # regular files unpacked (hard link targets)
        self.written = 0
        self.members = 0

    def refuse(self, name: str, why: str) -> InputError:
        shown = name if len(name) <= 80 else name[:77] + "..."
        return InputError(f"{self.origin}: member {shown!r} {why}; refusing the package",
                          hint="a package built by dpkg-deb has no such member")

    def name(self, raw: str) -> str:
        """The member's path relative to the root ('' for the root itself)."""
        if "\0" in raw:
            raise self.refuse(raw, "has a NUL in its name")
        if raw.startswith("/"):
            raise self.refuse(raw, "has an absolute name")
        if ".." in raw.split("/"):
            raise self.refuse(raw, "climbs out with '..'")
        norm = posixpath.normpath(raw)
        return "" if norm == "." else norm

    def make_dirs(self, rel: str, raw: str) -> Path:
        """Make every directory of ``rel`` (itself included), never through a link."""
        path = self.root
        done = ""
        for part in rel.split("/") if rel else []:
            done = f"{done}/{part}" if done else part
            path = path / part
            if done in self.dirs:
                continue
            try:
                mode = os.lstat(path).st_mode
            except FileNotFoundError:
                os.mkdir(path, 0o755)
            else:
                if not stat.S_ISDIR(mode):
                    what = "a symbolic link" if stat.S_ISLNK(mode) else "a file"
                    raise self.refuse(raw, f"lies below {done!r}, which is {what}")
            self.dirs.add(done)
        return path

    def clear(self, rel: str, raw: str) -> Path:
        """The path for a new non-directory member: its parents made, anything there removed."""
        parent, _, base = rel.rpartition("/")
        path = self.make_dirs(parent, raw) / base
        if rel in self.dirs:
            raise self.refuse(raw, "replaces a directory")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        self.files.discard(rel)
        return path

    def budget(self, raw: str, size: int) -> None:
        self.members += 1
        self.written += max(size, 0)
        if self.members > MAX_MEMBERS:
            raise self.refuse(raw, f"is one more than {MAX_MEMBERS} members")
        if self.written > MAX_UNPACKED_BYTES:
            raise self.refuse(raw, f"takes the package beyond {MAX_UNPACKED_BYTES >> 30} GiB")

    def regular(self, tar: tarfile.TarFile, member: tarfile.TarInfo, rel: str) -> None:
        path = self.clear(rel, member.name)
        source = tar.extractfile(member)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
        with os.fdopen(fd, "wb") as out:
            if source is not None:
                shutil.copyfileobj(source, out)
            os.fchmod(out.fileno(), (member.mode & 0o755) | 0o600)
        self.files.add(rel)

    def symlink(self, member: tarfile.TarInfo, rel: str) -> None:
        target = member.linkname
        if not target or "\0" in target:
            raise self.refuse(member.name, "is a symbolic link to nothing")
        parent = posixpath.dirname(rel)
        joined = target if target.startswith("/") else posixpath.join("/", parent, target)
        # resolve '..' as the root file system does: it stops at the top
        parts: list[str] = []
        for part in joined.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(part)
        # "../" up to a directory made here, then down without "..": the kernel
        # can follow it only inside the tree, whatever the links below are
        confined = posixpath.relpath("/".join(parts) or ".", parent or ".")
        path = self.clear(rel, member.name)
        os.symlink(confined, path)

    def hardlink(self, member: tarfile.TarInfo, rel: str) -> None:
        target = member.linkname
        if target.startswith("/") or ".." in target.split("/") or "\0" in target:
            raise self.refuse(member.name, f"is a hard link to {target!r}, outside the package")
        source_rel = posixpath.normpath(target)
        if source_rel not in self.files or source_rel == rel:
            raise self.refuse(member.name,
                              f"is a hard link to {member.linkname!r}, not a file unpacked before")
        source = self.root / source_rel
        path = self.clear(rel, member.name)
        if not stat.S_ISREG(os.lstat(source).st_mode):
            raise self.refuse(member.name, "is a hard link to something not a regular file")
        os.link(source, path, follow_symlinks=False)
        self.files.add(rel)


def extract(tar: tarfile.TarFile, root: Path, origin: Path) -> None:
    """Unpack every member of ``tar`` below ``root`` (an empty directory), confined to it."""
    unpacker = _Unpacker(root, origin)
    for member in tar:
        rel = unpacker.name(member.name)
        unpacker.budget(member.name, member.size if member.isreg() else 0)
        if member.isdir():
            unpacker.make_dirs(rel, member.name)
        elif not rel:
            raise unpacker.refuse(member.name, "replaces the top directory")
        elif member.isreg():
            unpacker.regular(tar, member, rel)
        elif member.issym():
            unpacker.symlink(member, rel)
        elif member.islnk():
            unpacker.hardlink(member, rel)
        # character and block devices, FIFOs: nothing a library check needs
