"""Checks on untrusted input before it becomes a path, a shell word or memory.

Everything hwcapdeb reads may come from a package nobody trusts (``verify``
runs on uploads, ``convert`` on any source tree).  Three rules hold here:

* names are checked before they become paths: Debian package names against
  Policy 5.6.1 (``[a-z0-9][a-z0-9+.-]+``), relative paths against absolute
  and ``..`` components, resolved paths against the root they must stay in;
* input files are opened only if they are regular files (a FIFO would block,
  ``/dev/zero`` never ends), without blocking, and read up to a bound;
* text is decoded strictly and JSON parsed with its nesting bounded, so a
  malformed file gives one line naming it, never an internal error.

Each check raises the :class:`~hwcapdeb.errors.HwcapdebError` subclass the
caller names (InputError by default), so the message reaches the user as
one line with exit status 2.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import re
import stat
from pathlib import Path
from typing import Any

from hwcapdeb.errors import HwcapdebError, InputError

#: text inputs (control files, .changes, profiles, CPU dumps, manifests)
MAX_TEXT_BYTES = 16 << 20
#: what one .deb may unpack to, and how many members it may have
MAX_UNPACKED_BYTES = 8 << 30
MAX_MEMBERS = 500_000
#: JSON nesting deeper than any file hwcapdeb reads (profiles are 4 deep)
MAX_JSON_DEPTH = 32
#: NAME_MAX of Linux file systems: a longer SONAME can never be a file name
NAME_MAX = 255

#: Debian Policy 5.6.1 (Source) and 5.6.7 (Package): lower case letters, digits,
#: '+', '-', '.'; at least two characters; starting with a letter or digit
PACKAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")


def _size(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit} bytes"


def check_package_name(name: str, *, field: str = "Package", where: str = "",
                       error: type[HwcapdebError] = InputError) -> str:
    """``name`` if it is a valid Debian package name (Policy 5.6.1), else ``error``."""
    if not PACKAGE_NAME.match(name):
        shown = name if len(name) <= 60 else name[:57] + "..."
        prefix = f"{where}: " if where else ""
        raise error(
            f"{prefix}{field}: {shown!r} is not a valid package name",
            hint="Debian Policy 5.6.1: lower case letters, digits, '+', '-' and '.', "
                 "at least two characters, starting with a letter or digit",
        )
    return name


#: Debian Policy 5.6.12: [epoch:]upstream[-revision], alphanumerics and . + ~ - :
VERSION = re.compile(r"^([0-9]+:)?[0-9][A-Za-z0-9.+~:-]*$")


def check_version(version: str, *, where: str = "",
                  error: type[HwcapdebError] = InputError) -> str:
    """``version`` if it is a valid Debian version (Policy 5.6.12), else ``error``."""
    if not VERSION.match(version) or len(version) > 200:
        prefix = f"{where}: " if where else ""
        raise error(f"{prefix}Version: {version[:60]!r} is not a valid Debian version",
                    hint="Debian Policy 5.6.12: digits first, then letters, digits and . + ~ - :")
    return version


def check_file_name(name: str, *, what: str, where: str,
                    error: type[HwcapdebError] = InputError) -> str:
    """``name`` if it can be one directory entry (a SONAME, say): UTF-8, no '/', <= NAME_MAX."""
    if "\ufffd" in name or any(0xDC80 <= ord(c) <= 0xDCFF for c in name):
        raise error(f"{where}: its {what} is not valid UTF-8",
                    hint="hwcapdeb handles UTF-8 names only")
    size = len(name.encode("utf-8", "surrogateescape"))
    if not name or size > NAME_MAX or "/" in name or "\0" in name:
        shown = name if len(name) <= 60 else name[:57] + "..."
        why = (f"is {size} bytes long; a file name has at most {NAME_MAX}" if size > NAME_MAX
               else "is empty" if not name else "contains '/' or NUL")
        raise error(f"{where}: its {what} {shown!r} {why}",
                    hint="no file can have that name, so the loader never finds it")
    return name


def safe_relpath(rel: Any, *, what: str, where: str, under: str = "",
                 error: type[HwcapdebError] = InputError) -> str:
    """A relative POSIX path without ``..`` (and below ``under`` if given), normalised."""
    if not isinstance(rel, str) or not rel or "\0" in rel:
        raise error(f"{where}: {what} is not a path ({rel!r:.60})")
    norm = posixpath.normpath(rel)
    if (posixpath.isabs(rel) or norm == ".." or norm.startswith("../")
            or ".." in rel.split("/")):
        raise error(f"{where}: {what} {rel!r:.80} leaves the tree",
                    hint="only relative paths without '..' are accepted")
    if under and not (norm + "/").startswith(under.rstrip("/") + "/"):
        raise error(f"{where}: {what} {rel!r:.80} is not below {under}")
    return norm


def inside(root: Path, path: Path) -> bool:
    """True if ``path`` (links resolved) is ``root`` or below it (links resolved)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a loop of links
        return False


def confined(root: Path, rel: str, *, what: str, where: str,
             error: type[HwcapdebError] = InputError) -> Path:
    """``root/rel`` after :func:`safe_relpath`, refused if a link leads it out of ``root``."""
    path = root / safe_relpath(rel, what=what, where=where, error=error)
    if not inside(root, path):
        raise error(f"{where}: {what} {rel!r:.80} leads outside {root} through a link")
    return path


def open_regular(path: Path, *, what: str = "file",
                 error: type[HwcapdebError] = InputError) -> int:
    """A read-only descriptor of ``path``, refused unless it is a regular file.

    The file is opened without blocking (a FIFO with no writer would hang
    ``open``) and checked on the descriptor itself, so nothing can swap it in
    between.  The caller closes the descriptor.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as err:
        raise error(_os_message(path, what, err)) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                    else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
            raise error(f"cannot read {what} {path}: it is {kind}, not a regular file",
                        hint="give a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _os_message(path: Path, what: str, err: OSError) -> str:
    reason = {
        errno.ENOENT: "no such file",
        errno.ELOOP: "a loop of symbolic links",
        errno.EACCES: "permission denied",
        errno.ENAMETOOLONG: "file name too long",
        errno.ENOTDIR: "a component of the path is not a directory",
    }.get(err.errno or 0, err.strerror or str(err))
    return f"cannot read {what} {path}: {reason}"


def read_bytes(path: Path, *, what: str = "file", limit: int = MAX_TEXT_BYTES,
               error: type[HwcapdebError] = InputError) -> bytes:
    """The bytes of a regular file, refused beyond ``limit``."""
    fd = open_regular(path, what=what, error=error)
    with os.fdopen(fd, "rb") as fh:
        try:
            data = fh.read(limit + 1)
        except OSError as err:
            raise error(_os_message(path, what, err)) from None
    if len(data) > limit:
        raise error(f"{path}: the {what} is larger than {_size(limit)}",
                    hint="this is not the kind of file expected here")
    return data


def decode_text(data: bytes, *, path: Path | str, what: str = "file",
                error: type[HwcapdebError] = InputError) -> str:
    """``data`` as UTF-8, or one line saying where it is not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise error(f"{path}: the {what} is not valid UTF-8 (line {line})",
                    hint="save it as UTF-8") from None


def read_text(path: Path, *, what: str = "file", limit: int = MAX_TEXT_BYTES,
              error: type[HwcapdebError] = InputError) -> str:
    """A regular UTF-8 text file of at most ``limit`` bytes."""
    data = read_bytes(path, what=what, limit=limit, error=error)
    return decode_text(data, path=path, what=what, error=error)


def _depth(text: str) -> int:
    """The deepest nesting of JSON arrays and objects in ``text`` (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json(text: str, *, path: Path | str, what: str = "file",
               error: type[HwcapdebError] = InputError) -> Any:
    """JSON ``text``; nesting beyond MAX_JSON_DEPTH and syntax errors give one line."""
    if _depth(text) > MAX_JSON_DEPTH:
        raise error(f"{path}: the {what} nests deeper than {MAX_JSON_DEPTH} levels",
                    hint="this is not the kind of file expected here")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{path}: the {what} is not valid JSON ({err.msg} at line {err.lineno})",
                    hint="fix its syntax") from None
    except (RecursionError, ValueError) as err:  # huge integers, odd constants
        raise error(f"{path}: the {what} is not valid JSON ({type(err).__name__})") from None


def read_json(path: Path, *, what: str = "file", limit: int = MAX_TEXT_BYTES,
              error: type[HwcapdebError] = InputError) -> Any:
    """A JSON file read with every bound above."""
    return parse_json(read_text(path, what=what, limit=limit, error=error), path=path, what=what,
                      error=error)


_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MODE = re.compile(r"^[0-7]{1,6}$")


def check_manifest(doc: Any, *, where: str, state_dir: str,
                   error: type[HwcapdebError] = InputError) -> dict[str, Any]:
    """``doc`` if it has the shape convert writes (debian/hwcapdeb/manifest.json).

    Every path in it is relative, without ``..``: the files conversion owns
    lie below ``debian/``, their stored originals below ``state_dir``.  Types
    are checked so that revert and convert never meet a value they cannot use.
    """
    def bad(what: str) -> HwcapdebError:
        return error(f"{where} is damaged ({what})", hint="restore debian/ from your VCS")

    if not isinstance(doc, dict):
        raise bad("not a JSON object")
    files = doc.get("files")
    if not isinstance(files, dict):
        raise bad("no 'files' object")
    for key in ("version_suffix", "changelog_date", "changelog_author"):
        if doc.get(key) is not None and not isinstance(doc[key], str):
            raise bad(f"'{key}' is not a string")
    for rel, entry in files.items():
        safe_relpath(rel, what="a file it lists", where=where, under="debian", error=error)
        if not isinstance(entry, dict):
            raise bad(f"the entry of {rel!r:.60} is not an object")
        if "original" not in entry:
            raise bad(f"the entry of {rel!r:.60} has no 'original'")
        original = entry["original"]
        if original is not None:
            safe_relpath(original, what=f"the stored original of {rel}", where=where,
                         under=state_dir, error=error)
        if not ((isinstance(entry.get("sha256"), str) and _SHA256.match(entry["sha256"]))
                or (isinstance(entry.get("link"), str) and entry["link"])):
            raise bad(f"{rel!r:.60} has no sha256 or link")
        if original is None:
            continue
        if "original_link" in entry:
            if not isinstance(entry["original_link"], str) or not entry["original_link"] \
                    or "\0" in entry["original_link"]:
                raise bad(f"the original link of {rel!r:.60} is not a path")
        elif not (isinstance(entry.get("original_sha256"), str)
                  and _SHA256.match(entry["original_sha256"])
                  and isinstance(entry.get("original_mode"), str)
                  and _MODE.match(entry["original_mode"])):
            raise bad(f"the original of {rel!r:.60} has no sha256 or mode")
    return doc


def check_parents(root: Path, rel: str, *, where: str,
                  error: type[HwcapdebError] = InputError) -> None:
    """Refuse writing ``root/rel`` if a directory on the way is a link or not a directory.

    A tree nobody trusts may hold ``debian/hwcapdeb -> /somewhere``: writing
    through it would land outside the tree.
    """
    path = root
    for part in safe_relpath(rel, what="a path", where=where, error=error).split("/")[:-1]:
        path = path / part
        if path.is_symlink():
            raise error(f"{path} is a symbolic link; hwcapdeb writes below it only when it is "
                        "a directory of the tree", hint="replace the link by a directory")
        if path.exists() and not path.is_dir():
            raise error(f"{path} is not a directory, but hwcapdeb writes files below it",
                        hint="move it away")
