"""Helpers of the hostile-input tests: a box to run commands in, crafted .debs, odd files.

Every run happens in a :class:`Box` (inputs, $TMPDIR, HOME and a sentinel
file "outside"); :func:`check` runs a command in this process (cut by
SIGALRM if it hangs) and asserts what every hostile input must give: exit
status 0, 1 or 2 (never 70), one ``hwcapdeb: error:`` line when 2, no
traceback, nothing changed in the box but where the command may write, and
$TMPDIR empty afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import os
import random
import shutil
import signal
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hwcapdeb.cli import main
from tests.elfbuild import compile_library

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vecmath"
HWCAPDEB = Path(sys.executable).with_name("hwcapdeb")
CONTROL = (
    "Package: libhw1\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: T <t@example.org>\n"
    "Description: hostile\n"
)


# -- the box every run happens in -------------------------------------------------------


@dataclass
class Box:
    """A test's world: inputs in ``root``, $TMPDIR in ``tmp``, a sentinel ``outside``."""

    root: Path

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def sentinel(self) -> Path:
        return self.root / "outside" / "sentinel"

    def env(self) -> dict[str, str]:
        return {
            "TMPDIR": str(self.tmp),
            "HOME": str(self.home),
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "LC_ALL": "C.UTF-8",
        }


def make_box(tmp_path: Path) -> Box:
    """The box of one test (the test modules' ``box`` fixture)."""
    b = Box(tmp_path)
    for d in (b.tmp, b.home, b.sentinel.parent):
        d.mkdir()
    b.sentinel.write_text("original\n")
    return b


def snapshot(root: Path, skip: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below root but ``skip`` (lstat only: FIFOs are never opened)."""
    result: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == skip:
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            path = here / name
            if path == skip:
                continue
            st = path.lstat()
            rel = os.fsencode(path.relative_to(root))
            if path.is_symlink():
                result[rel.decode(errors="replace")] = ("link", os.readlink(path))
            elif path.is_file() and st.st_size < 1 << 20:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                result[rel.decode(errors="replace")] = ("file", digest, st.st_mode)
            else:
                result[rel.decode(errors="replace")] = (
                    "other",
                    st.st_mode,
                    st.st_size,
                    st.st_mtime_ns,
                )
    return result


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def alarm(signum: int, frame: object) -> None:
    raise TimeoutError("the command hung (SIGALRM after the time limit)")


def invoke(
    box: Box, argv: list[str], env: dict[str, str] | None = None, timeout: int = 60
) -> Outcome:
    """``hwcapdeb ARGV`` in this process, in the box, cut by SIGALRM if it hangs."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    for key in ("HWCAPDEB_PROFILE_PATH", "HWCAPDEB_DEBUG", "GLIBC_TUNABLES"):
        os.environ.pop(key, None)
    os.environ.update(box.env(), **(env or {}))
    tempfile.tempdir = None
    os.chdir(box.root)
    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(timeout)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        tempfile.tempdir = None
    return Outcome(code, out.getvalue(), err.getvalue())


def check(
    box: Box,
    argv: list[str],
    env: dict[str, str] | None = None,
    *,
    codes: tuple[int, ...] = (0, 1, 2),
    writes: Callable[[str], bool] | None = None,
) -> Outcome:
    """Run and check: a known exit status, one error line, no traceback, no stray writes."""
    before = snapshot(box.root, box.tmp)
    result = invoke(box, argv, env)
    after = snapshot(box.root, box.tmp)
    text = result.out + result.err
    assert "Traceback" not in text and "internal error" not in text, text[-2000:]
    assert result.code in codes, (result.code, text[-2000:])
    if result.code == 2:
        errors = [line for line in result.err.splitlines() if line.startswith("hwcapdeb: error:")]
        assert len(errors) == 1, result.err
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    # the user's cache (~/.cache/hwcapdeb: archive answers, loaders) is hwcapdeb's to write
    cache = ("home", "home/.cache", "home/.cache/hwcapdeb")
    stray = sorted(
        k
        for k in changed
        if not (writes and writes(k))
        and k not in cache
        and not k.startswith("home/.cache/hwcapdeb/")
    )
    assert not stray, f"written outside the scratch directory: {stray}"
    assert box.sentinel.read_text() == "original\n"
    assert not list(box.tmp.iterdir()), f"scratch left behind: {list(box.tmp.iterdir())}"
    return result


# -- crafted .debs ----------------------------------------------------------------------


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode, format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _ar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with path.open("wb") as fh:
        fh.write(b"!<arch>\n")
        for name, data in members:
            fh.write(f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode())
            fh.write(data + (b"\n" if len(data) % 2 else b""))
    return path


def reg(name: str, data: bytes = b"x\n", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def folder(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    return info, None


def make_deb(
    path: Path, data: list[tuple[tarfile.TarInfo, bytes | None]], control: str = CONTROL
) -> Path:
    control_tar = _tar([reg("./control", control.encode())])
    return _ar(
        path,
        [("debian-binary", b"2.0\n"), ("control.tar.gz", control_tar), ("data.tar.gz", _tar(data))],
    )


def copy_example(box: Box) -> Path:
    """examples/vecmath copied into the box (the test modules' ``src`` fixture)."""
    dest = box.root / "vecmath"
    shutil.copytree(EXAMPLE, dest, symlinks=True)
    return dest


def inside_tree(tree: Path) -> Callable[[str], bool]:
    prefix = tree.name + "/"
    return lambda rel: rel == tree.name or rel.startswith(prefix)


HUGE = 17 << 20


def huge(path: Path) -> None:
    with path.open("wb") as fh:  # one line of 17 MiB: above every text bound
        fh.write(b"a" * HUGE)


def garbage(path: Path) -> None:
    path.write_bytes(random.Random(12).randbytes(65536))


ODD: dict[str, Callable[[Path], None]] = {
    "empty": lambda p: p.write_bytes(b""),
    "directory": lambda p: p.mkdir(),
    "garbage": garbage,
    "huge-line": huge,
    "non-utf8": lambda p: p.write_bytes(b'Package: \xff\xfe\nflags : \x80\x81\n{"\xff": 1}\n'),
    "fifo": lambda p: os.mkfifo(p),
    "dev-zero": lambda p: p.symlink_to("/dev/zero"),
    "link-loop": lambda p: p.symlink_to(p.name),
    "dangling-link": lambda p: p.symlink_to("nowhere-at-all"),
    "link-up": lambda p: p.symlink_to(".."),
}


LIBDIR = "tree/usr/lib/x86_64-linux-gnu"


@functools.cache
def library() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return compile_library(Path(tmp) / "libhw.so.1.0", soname="libhw.so.1").read_bytes()


def in_tree(rel: str) -> Callable[[Box, Callable[[Path], None]], tuple[list[str], dict[str, str]]]:
    """A package tree with a baseline and a v3 variant; ``rel`` (below the libdir) made odd."""

    def make(box: Box, odd: Callable[[Path], None]) -> tuple[list[str], dict[str, str]]:
        libdir = box.root / LIBDIR
        for level in ("", "glibc-hwcaps/x86-64-v3/"):
            (libdir / level).mkdir(parents=True, exist_ok=True)
            (libdir / level / "libhw.so.1.0").write_bytes(library())
            (libdir / level / "libhw.so.1").symlink_to("libhw.so.1.0")
        path = libdir / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        odd(path)
        return ["verify", "--no-probe", "--matrix", str(box.root / "tree")], {}

    return make
