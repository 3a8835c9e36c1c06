"""Permissions, without root's override capabilities: ``hwcapdeb which`` and the real
loader both run as an unprivileged user (setpriv), on files and directories that user
may not read or enter.  The loader skips a variant it cannot open (EACCES) and goes
on; the model must do the same, and never fail internally on a directory it cannot
list."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.elfbuild import install_variant_tree

SONAME = "libhwtest.so.1"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
HWCAPDEB = Path(sys.executable).parent / "hwcapdeb"
pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None
    or not os.path.exists("/lib64/ld-linux-x86-64.so.2"),
    reason="needs root (to drop to an unprivileged user), setpriv and the amd64 loader",
)


@pytest.fixture
def lib() -> Iterator[Path]:
    """A variant tree in a directory the unprivileged user can reach (not pytest's 0700)."""
    top = Path(tempfile.mkdtemp(prefix="hwcapdeb-perm-"))
    top.chmod(0o755)
    libdir = top / "lib"
    install_variant_tree(libdir, soname=SONAME)
    subprocess.run(["chmod", "-R", "a+rX", str(top)], check=True)
    yield libdir
    subprocess.run(["chmod", "-R", "u+rwX", str(top)], check=True)
    shutil.rmtree(top)


def which_as_nobody(*argv: str) -> tuple[int, dict[str, object], str]:
    done = subprocess.run([*NOBODY, str(HWCAPDEB), "which", SONAME, "--json", *argv],
                          capture_output=True, text=True, cwd="/")
    assert done.returncode in (0, 1), done.stderr  # 70 would be an internal error
    return done.returncode, json.loads(done.stdout), done.stderr


@pytest.mark.parametrize(
    ("target", "mode"),
    [("glibc-hwcaps/x86-64-v3/libhwtest.so.1.0.0", 0o000),  # unreadable variant file
     ("glibc-hwcaps/x86-64-v3", 0o000),  # a level directory the user cannot enter
     ("glibc-hwcaps/x86-64-v2", 0o311),  # can enter, cannot list
     ("glibc-hwcaps", 0o000)],
)
def test_unreadable_variant_is_skipped_like_the_loader_does(
    lib: Path, target: str, mode: int
) -> None:
    (lib / target).chmod(mode)
    code, doc, err = which_as_nobody("--library-path", str(lib))
    real = doc["real_loader"]
    assert isinstance(real, dict) and real["agrees"] is True, (doc, err)
    assert code == 0 and doc["path"], doc
    if mode == 0o000:
        assert target not in str(doc["path"])  # skipped, a lower level (or baseline) loads


def test_unreadable_directories_of_a_sysroot_are_no_internal_error(lib: Path) -> None:
    root = lib.parent / "root"
    multiarch = root / "usr/lib/x86_64-linux-gnu"
    multiarch.mkdir(parents=True)
    (root / "etc").mkdir()
    (root / "etc/ld.so.cache").write_bytes(b"")
    shutil.copytree(lib, multiarch / "sub", symlinks=True)
    (root / "etc/ld.so.conf").write_text(f"/{multiarch.relative_to(root)}/sub\n")
    (multiarch / "sub/glibc-hwcaps").chmod(0o000)
    (multiarch / "sub").chmod(0o311)
    subprocess.run(["chmod", "a+rx", str(root), str(root / "etc"), str(root / "usr"),
                    str(root / "usr/lib"), str(multiarch)], check=True)
    code, doc, _ = which_as_nobody("--root", str(root), "--cpu", "haswell", "--no-real")
    assert code in (0, 1) and "trace" in doc
