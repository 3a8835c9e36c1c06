"""Hostile and odd input: every reader answers in one line, nothing escapes its scratch.

Each test builds its inputs itself (tarfile and ar for crafted .debs,
os.mkfifo for FIFOs, gcc for libraries with odd SONAMEs) and runs the real
command.  Every run is checked the same way (:func:`check`): exit status 0,
1 or 2 (never 70), one ``hwcapdeb: error:`` line when 2, no traceback,
nothing changed in the test's directory except where the command may write,
and the scratch directory ($TMPDIR) empty afterwards.

The sweep at the end feeds every command odd files (empty, a directory,
binary garbage, a 17 MiB line, non-UTF-8 text and names, FIFOs, /dev/zero,
loops of links, dangling links) in every place it reads one; a hang is cut
by SIGALRM and fails the case.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hwcapdeb.cli import main
from hwcapdeb.debfile import unpack_deb
from hwcapdeb.errors import HwcapdebError, InputError
from tests.elfbuild import compile_library

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "vecmath"
HWCAPDEB = Path(sys.executable).with_name("hwcapdeb")
CONTROL = "Package: libhw1\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: T <t@example.org>\n" \
          "Description: hostile\n"


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
        return {"TMPDIR": str(self.tmp), "HOME": str(self.home),
                "XDG_CONFIG_HOME": str(self.home / ".config"), "LC_ALL": "C.UTF-8"}


@pytest.fixture
def box(tmp_path: Path) -> Box:
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
                result[rel.decode(errors="replace")] = ("other", st.st_mode, st.st_size,
                                                        st.st_mtime_ns)
    return result


@dataclass
class Outcome:
    code: int
    out: str
    err: str


def _alarm(signum: int, frame: object) -> None:
    raise TimeoutError("the command hung (SIGALRM after the time limit)")


def invoke(box: Box, argv: list[str], env: dict[str, str] | None = None,
           timeout: int = 60) -> Outcome:
    """``hwcapdeb ARGV`` in this process, in the box, cut by SIGALRM if it hangs."""
    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    for key in ("HWCAPDEB_PROFILE_PATH", "HWCAPDEB_DEBUG", "GLIBC_TUNABLES"):
        os.environ.pop(key, None)
    os.environ.update(box.env(), **(env or {}))
    tempfile.tempdir = None
    os.chdir(box.root)
    out, err = io.StringIO(), io.StringIO()
    previous = signal.signal(signal.SIGALRM, _alarm)
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


def check(box: Box, argv: list[str], env: dict[str, str] | None = None, *,
          codes: tuple[int, ...] = (0, 1, 2), writes: Callable[[str], bool] | None = None,
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
    stray = sorted(k for k in changed if not (writes and writes(k)))
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


def make_deb(path: Path, data: list[tuple[tarfile.TarInfo, bytes | None]],
             control: str = CONTROL) -> Path:
    control_tar = _tar([reg("./control", control.encode())])
    return _ar(path, [("debian-binary", b"2.0\n"), ("control.tar.gz", control_tar),
                      ("data.tar.gz", _tar(data))])


def crafted(box: Box) -> dict[str, Path]:
    """The .debs of issue 12 and their relatives; each tries to write outside."""
    out = str(box.sentinel)
    rel_out = os.path.relpath(box.sentinel, box.tmp)  # from the scratch dir
    d = box.root / "debs"
    d.mkdir(exist_ok=True)
    pkg = "Version: 1\nArchitecture: amd64\nMaintainer: T <t@example.org>\nDescription: x\n"
    return {
        "hardlink-absolute-then-file": make_deb(
            d / "a.deb", [link("./evil", out, tarfile.LNKTYPE), reg("./evil", b"PWNED\n")]),
        "hardlink-dotdot-then-file": make_deb(
            d / "b.deb", [link("./evil", "../../../" + rel_out, tarfile.LNKTYPE),
                          reg("./evil", b"PWNED\n")]),
        "symlink-dir-then-file": make_deb(
            d / "c.deb", [link("./d", str(box.sentinel.parent)), reg("./d/sentinel", b"PWNED\n")]),
        "symlink-file-then-file": make_deb(
            d / "d.deb", [link("./s", out), reg("./s", b"PWNED\n")]),
        "relative-symlink-up-then-file": make_deb(
            d / "e.deb", [folder("./usr"), link("./usr/up", "../../../../../../../.."),
                          reg("./usr/up" + str(box.sentinel), b"PWNED\n")]),
        "absolute-member": make_deb(d / "f.deb", [reg(out, b"PWNED\n")]),
        "dotdot-member": make_deb(d / "g.deb", [reg("./../../../" + rel_out, b"PWNED\n")]),
        "package-dotdot": make_deb(d / "h.deb", [reg("./usr/lib/x")],
                                   control=f"Package: ../../escaped\n{pkg}"),
        "package-absolute": make_deb(d / "i.deb", [reg("./usr/lib/x")],
                                     control=f"Package: {box.root}/absx\n{pkg}"),
        "package-shell": make_deb(d / "j.deb", [reg("./usr/lib/x")],
                                  control=f"Package: $(touch {box.root}/pwned)\n{pkg}"),
        "member-replaces-a-directory": make_deb(
            d / "k.deb", [folder("./usr"), link("./usr", str(box.sentinel.parent)),
                          reg("./usr/sentinel", b"PWNED\n")]),
    }


CRAFTED = ["hardlink-absolute-then-file", "hardlink-dotdot-then-file", "symlink-dir-then-file",
           "symlink-file-then-file", "relative-symlink-up-then-file", "absolute-member",
           "dotdot-member", "package-dotdot", "package-absolute", "package-shell",
           "member-replaces-a-directory"]


@pytest.mark.parametrize("case", CRAFTED)
def test_crafted_deb_never_writes_outside(box: Box, case: str) -> None:
    deb = crafted(box)[case]
    # a package that plants a link and writes through it is refused; one whose
    # links are only rewritten (symlink-file-then-file: the file replaces the link) may pass
    result = check(box, ["verify", "--no-probe", str(deb)], codes=(0, 1, 2))
    if case != "symlink-file-then-file":
        assert result.code == 2, result.err
    assert not (box.root / "pwned").exists()
    assert not list(box.root.glob("absx*")) and not list(box.root.glob("escaped*"))
    if case.startswith("package-"):
        assert "5.6.1" in result.err and "Package" in result.err


def test_crafted_deb_in_a_changes_file(box: Box) -> None:
    deb = crafted(box)["hardlink-absolute-then-file"]
    changes = deb.parent / "x_1_amd64.changes"
    changes.write_text("Format: 1.8\nSource: x\nFiles:\n"
                       f" 0123 1 libs optional {deb.name}\n")
    result = check(box, ["verify", "--no-probe", str(changes)], codes=(2,))
    assert "hard link" in result.err


def test_legit_links_unpack_inside_the_tree(box: Box) -> None:
    """Absolute and climbing links of a real package stay usable, and stay inside."""
    deb = make_deb(box.root / "ok.deb", [
        folder("./usr/"), folder("./usr/lib/"), reg("./usr/lib/libhw.so.1.0", b"ELF?\n"),
        link("./usr/lib/libhw.so.1", "libhw.so.1.0"),
        link("./usr/lib/libhw.so", "/usr/lib/libhw.so.1"),
        link("./usr/lib/far", "../../../../../../etc"),
        link("./usr/lib/same", "./usr/lib/libhw.so.1.0", tarfile.LNKTYPE),
        reg("./usr/lib/libhw.so.1.0", b"replaced\n"),  # replaces, never writes through
    ])
    tree = unpack_deb(deb, box.tmp)
    lib = tree.root / "usr/lib"
    assert os.readlink(lib / "libhw.so.1") == "libhw.so.1.0"
    assert os.readlink(lib / "libhw.so") == "libhw.so.1"  # absolute made relative to the tree
    assert (lib / "libhw.so").resolve() == (lib / "libhw.so.1.0").resolve()
    assert (lib / "far").resolve() == (tree.root / "etc").resolve()  # '..' stops at the top
    assert (lib / "same").read_bytes() == b"ELF?\n"  # the hard link kept the first file
    assert (lib / "libhw.so.1.0").read_bytes() == b"replaced\n"
    assert tree.name == "libhw1"


# -- FIFOs, devices, bounds, Ctrl-C -----------------------------------------------------


def test_fifo_as_deb_is_refused_at_once(box: Box) -> None:
    fifo = box.root / "x.deb"
    os.mkfifo(fifo)
    result = check(box, ["verify", "--no-probe", str(fifo)], codes=(2,))
    assert "FIFO" in result.err


def test_dev_zero_as_cpu_dump_is_refused(box: Box) -> None:
    result = check(box, ["which", "--no-real", "--cpu", "/dev/zero", "libc.so.6"], codes=(2,))
    assert "device" in result.err


def test_oversized_cpu_dump_is_refused(box: Box) -> None:
    big = box.root / "cpuinfo"
    with big.open("wb") as fh:
        fh.truncate(17 << 20)  # sparse: 17 MiB of NULs, no disk used
    result = check(box, ["cpus", "--cpu", str(big)], codes=(2,))
    assert "larger than 16 MiB" in result.err


def _slow_deb(path: Path, files: int = 6000) -> Path:
    """A .deb of many small files: unpacking takes a while."""
    members: list[tuple[tarfile.TarInfo, bytes | None]] = [folder("./usr/"), folder("./usr/share/")]
    members += [reg(f"./usr/share/f{i:05d}", b"x") for i in range(files)]
    return make_deb(path, members, control=CONTROL.replace("libhw1", "libslow1"))


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["ctrl-c", "sigterm"])
def test_interrupt_removes_the_scratch_directory(box: Box, sig: int, code: int) -> None:
    deb = _slow_deb(box.root / "slow.deb")
    proc = subprocess.Popen([str(HWCAPDEB), "verify", "--no-probe", str(deb)],
                            env={**os.environ, **box.env()}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        trees = list(box.tmp.glob("hwcapdeb-*/libslow1_*/usr/share/f0*"))
        if trees:
            break
        time.sleep(0.005)
    else:
        proc.kill()
        pytest.skip("the unpack finished before the signal could be sent (machine too fast)")
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert sig != signal.SIGINT or "interrupted" in err
    assert not list(box.tmp.iterdir()), "scratch left behind after the signal"


def test_error_mid_unpack_removes_the_scratch_directory(box: Box) -> None:
    deb = make_deb(box.root / "half.deb", [folder("./usr/"), reg("./usr/a"), reg("./usr/b"),
                                            reg("/abs", b"PWNED\n")])
    result = check(box, ["verify", "--no-probe", str(deb)], codes=(2,))
    assert "absolute" in result.err


# -- what gave internal errors (exit 70) ------------------------------------------------


@pytest.mark.parametrize("soname", ["lib" + "a" * 294 + ".so.1", "lib\udcff\udcfe.so.1"],
                         ids=["300-characters", "not-utf8"])
def test_odd_soname_is_a_finding(box: Box, soname: str) -> None:
    libdir = box.root / "tree/usr/lib/x86_64-linux-gnu"
    name = "libodd.so.1"
    baseline = compile_library(libdir / name, soname=soname)
    (libdir / "glibc-hwcaps/x86-64-v3").mkdir(parents=True)
    shutil.copy(baseline, libdir / "glibc-hwcaps/x86-64-v3" / name)
    result = check(box, ["verify", "--no-probe", str(box.root / "tree")], codes=(1, 2))
    assert "SONAME" in result.out + result.err


def test_deep_and_non_utf8_profiles(box: Box) -> None:
    profiles = box.root / "profiles"
    profiles.mkdir()
    (profiles / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    result = check(box, ["profiles"], {"HWCAPDEB_PROFILE_PATH": str(profiles)}, codes=(2,))
    assert "deeper than" in result.err
    (profiles / "deep.json").write_bytes(b'{"name": "\xff"}')
    result = check(box, ["profiles"], {"HWCAPDEB_PROFILE_PATH": str(profiles)}, codes=(2,))
    assert "UTF-8" in result.err


def test_user_profile_overriding_a_builtin_warns(box: Box) -> None:
    profiles = box.root / "profiles"
    profiles.mkdir()
    data = json.loads((EXAMPLE.parent.parent / "profiles/profiles/x86-64-v3.json").read_text())
    data["description"] = "mine"
    (profiles / "mine.json").write_text(json.dumps(data))
    result = check(box, ["profiles", "--json"], {"HWCAPDEB_PROFILE_PATH": str(profiles)},
                   codes=(0,))
    warnings = [line for line in result.err.splitlines() if "warning" in line]
    assert len(warnings) == 1, result.err
    assert "x86-64-v3" in warnings[0] and "overrides" in warnings[0]
    assert '"mine"' in result.out
    data.update(name="mine", aliases=["v3"])
    (profiles / "mine.json").write_text(json.dumps(data))
    result = check(box, ["profiles"], {"HWCAPDEB_PROFILE_PATH": str(profiles)}, codes=(0,))
    assert "alias 'v3' already names profile 'x86-64-v3'" in result.err


@pytest.fixture
def src(box: Box) -> Path:
    dest = box.root / "vecmath"
    shutil.copytree(EXAMPLE, dest, symlinks=True)
    return dest


def _in(tree: Path) -> Callable[[str], bool]:
    prefix = tree.name + "/"
    return lambda rel: rel == tree.name or rel.startswith(prefix)


def test_non_utf8_source_format(box: Box, src: Path) -> None:
    (src / "debian/source/format").write_bytes(b"3.0 (qu\xffilt)\n")
    result = check(box, ["convert", "-p", "x86-64-v3", str(src)], codes=(2,))
    assert "debian/source/format" in result.err and "UTF-8" in result.err


MANIFESTS = {
    "not-json": b"{files: ",
    "not-utf8": b'{"files": {"\xff": 1}}',
    "a-list": b"[1, 2]",
    "files-missing": b'{"format": 1}',
    "files-a-list": b'{"files": []}',
    "entry-a-string": b'{"files": {"debian/rules": "x"}}',
    "original-a-number": b'{"files": {"debian/rules": {"original": 5, "sha256": "' + b"0" * 64
                         + b'"}}}',
    "sha-missing": b'{"files": {"debian/rules": {"original": null}}}',
    "deep": b'{"files": ' + b"[" * 5000 + b"]" * 5000 + b"}",
}


@pytest.mark.parametrize("case", sorted(MANIFESTS))
@pytest.mark.parametrize("command", ["convert", "revert"])
def test_malformed_manifest(box: Box, src: Path, case: str, command: str) -> None:
    (src / "debian/hwcapdeb").mkdir()
    (src / "debian/hwcapdeb/manifest.json").write_bytes(MANIFESTS[case])
    argv = [command, str(src)] + (["-p", "x86-64-v3"] if command == "convert" else [])
    result = check(box, argv, codes=(2,))
    assert "manifest" in result.err


def _converted(box: Box, src: Path) -> dict[str, object]:
    check(box, ["convert", "-p", "x86-64-v3", str(src)], codes=(0,), writes=_in(src))
    doc: dict[str, object] = json.loads((src / "debian/hwcapdeb/manifest.json").read_text())
    return doc


@pytest.mark.parametrize("where", ["dotdot", "absolute", "outside-state-dir", "through-link"])
@pytest.mark.parametrize("command", [["convert", "-p", "x86-64-v3", "--dry-run"], ["revert"]])
def test_manifest_original_outside_the_tree(box: Box, src: Path, where: str,
                                            command: list[str]) -> None:
    doc = _converted(box, src)
    secret = box.root / "outside" / "secret"
    secret.write_text("Source: secret-text\n")
    entry = doc["files"]["debian/control"] = {  # type: ignore[index]
        "original": None, "sha256": "0" * 64}
    target = {"dotdot": "debian/hwcapdeb/../../../outside/secret", "absolute": str(secret),
              "outside-state-dir": "debian/control",
              "through-link": "debian/hwcapdeb/original/outlink/secret"}[where]
    if where == "through-link":
        (src / "debian/hwcapdeb/original").mkdir(exist_ok=True)
        (src / "debian/hwcapdeb/original/outlink").symlink_to(secret.parent)
    entry.update(original=target, original_sha256=hashlib.sha256(secret.read_bytes()).hexdigest(),
                 original_mode="644")
    (src / "debian/hwcapdeb/manifest.json").write_text(json.dumps(doc))
    result = check(box, [*command, str(src)], codes=(2,))
    assert "secret-text" not in result.out + result.err


def test_manifest_file_key_outside_the_tree(box: Box, src: Path) -> None:
    doc = _converted(box, src)
    doc["files"]["../../outside/sentinel"] = {"original": None,  # type: ignore[index]
                                              "sha256": "0" * 64}
    (src / "debian/hwcapdeb/manifest.json").write_text(json.dumps(doc))
    result = check(box, ["revert", str(src)], codes=(2,))
    assert "leaves the tree" in result.err


@pytest.mark.parametrize("name", ["../..", "$(touch pwned)", "/abs/x", "Lib", "a", "x;y"])
def test_bad_binary_package_name(box: Box, src: Path, name: str) -> None:
    control = src / "debian/control"
    control.write_text(control.read_text().replace("Package: libvecmath1", f"Package: {name}", 1))
    result = check(box, ["convert", "-p", "x86-64-v3", str(src)], codes=(2,))
    assert "Package" in result.err and "5.6.1" in result.err
    assert not (src / "debian/hwcapdeb").exists() and not (box.root / "pwned").exists()


def test_bad_source_name(box: Box, src: Path) -> None:
    control = src / "debian/control"
    control.write_text(control.read_text().replace("Source: vecmath", "Source: ../x", 1))
    result = check(box, ["convert", "-p", "x86-64-v3", str(src)], codes=(2,))
    assert "Source" in result.err and "5.6.1" in result.err


def test_unreadable_inputs_without_root_privileges(box: Box) -> None:
    """As nobody (root reads everything): unreadable .deb, profile dir entry and CPU dump."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to drop privileges")
    probe = subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                            str(HWCAPDEB), "--version"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("nobody cannot run this checkout's hwcapdeb")
    world = Path(tempfile.mkdtemp(prefix="hwcapdeb-hostile-"))
    try:
        world.chmod(0o755)
        scratch = world / "tmp"
        scratch.mkdir(mode=0o777)
        scratch.chmod(0o777)
        secret = world / "secret"
        secret.mkdir(mode=0o700)
        for name in ("x.deb", "cpuinfo", "p.json"):
            (world / name).write_bytes(b"x")
            (world / name).chmod(0o000)
        trees = []
        for hidden in ("glibc-hwcaps", "glibc-hwcaps/x86-64-v3",
                       "glibc-hwcaps/x86-64-v3/libhw.so.1.0", "libhw.so.1.0"):
            libdir = world / f"tree{len(trees)}/usr/lib/x86_64-linux-gnu"
            for level in ("", "glibc-hwcaps/x86-64-v3/"):
                (libdir / level).mkdir(parents=True, exist_ok=True)
                (libdir / level / "libhw.so.1.0").write_bytes(_library())
                (libdir / level / "libhw.so.1").symlink_to("libhw.so.1.0")
            for path in [world, *libdir.relative_to(world).parents]:
                (world / path).chmod(0o755)
            for path in (libdir / "glibc-hwcaps").rglob("*"):
                if not path.is_symlink():
                    path.chmod(0o755 if path.is_dir() else 0o644)
            (libdir / hidden).chmod(0o000)
            trees.append(libdir.parents[2])
        cases = [["verify", "--no-probe", str(world / "x.deb")],
                 ["verify", "--no-probe", str(secret)],
                 ["cpus", "--cpu", str(world / "cpuinfo")],
                 ["which", "--no-real", "--cpu", str(world / "cpuinfo"), "libc.so.6"],
                 ["convert", "-p", str(world / "p.json"), str(world)],
                 *(["verify", "--no-probe", "--matrix", str(tree)] for tree in trees)]
        env = {"PATH": os.environ["PATH"], "TMPDIR": str(scratch), "HOME": str(scratch),
               "LC_ALL": "C.UTF-8"}
        for argv in cases:
            proc = subprocess.run([setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                   str(HWCAPDEB), *argv], env=env, capture_output=True,
                                  text=True, timeout=120, check=False)
            assert proc.returncode in (1, 2), (argv, proc.stderr)
            assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, argv
            assert not list(scratch.iterdir()), argv
    finally:
        shutil.rmtree(world)


# -- the sweep: every reader, every odd file --------------------------------------------

HUGE = 17 << 20


def _huge(path: Path) -> None:
    with path.open("wb") as fh:  # one line of 17 MiB: above every text bound
        fh.write(b"a" * HUGE)


def _garbage(path: Path) -> None:
    path.write_bytes(random.Random(12).randbytes(65536))


ODD: dict[str, Callable[[Path], None]] = {
    "empty": lambda p: p.write_bytes(b""),
    "directory": lambda p: p.mkdir(),
    "garbage": _garbage,
    "huge-line": _huge,
    "non-utf8": lambda p: p.write_bytes(b"Package: \xff\xfe\nflags : \x80\x81\n{\"\xff\": 1}\n"),
    "fifo": lambda p: os.mkfifo(p),
    "dev-zero": lambda p: p.symlink_to("/dev/zero"),
    "link-loop": lambda p: p.symlink_to(p.name),
    "dangling-link": lambda p: p.symlink_to("nowhere-at-all"),
    "link-up": lambda p: p.symlink_to(".."),
}


@dataclass
class Target:
    """Where a command reads a file: plant the odd entry, return argv, env and writes."""

    make: Callable[[Box, Callable[[Path], None]], tuple[list[str], dict[str, str]]]
    writes: Callable[[Box], Callable[[str], bool] | None] = lambda box: None


def _plain(argv: list[str], name: str, env: Callable[[Box], dict[str, str]] | None = None
           ) -> Callable[[Box, Callable[[Path], None]], tuple[list[str], dict[str, str]]]:
    def make(box: Box, odd: Callable[[Path], None]) -> tuple[list[str], dict[str, str]]:
        path = box.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        odd(path)
        if "{src}" in argv:
            shutil.copytree(EXAMPLE, box.root / "vecmath", symlinks=True)
        words = [a.replace("{}", str(path)).replace("{dir}", str(path.parent))
                 .replace("{up2}", str(path.parent.parent))
                 .replace("{src}", str(box.root / "vecmath")) for a in argv]
        return words, env(box) if env else {}
    return make


def _in_source(rel: str) -> Callable[[Box, Callable[[Path], None]],
                                     tuple[list[str], dict[str, str]]]:
    def make(box: Box, odd: Callable[[Path], None]) -> tuple[list[str], dict[str, str]]:
        src = box.root / "vecmath"
        shutil.copytree(EXAMPLE, src, symlinks=True)
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.exists() or path.is_symlink():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        odd(path)
        return ["convert", "-p", "x86-64-v3", str(src)], {}
    return make


LIBDIR = "tree/usr/lib/x86_64-linux-gnu"


@functools.cache
def _library() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        return compile_library(Path(tmp) / "libhw.so.1.0", soname="libhw.so.1").read_bytes()


def _in_tree(rel: str) -> Callable[[Box, Callable[[Path], None]],
                                   tuple[list[str], dict[str, str]]]:
    """A package tree with a baseline and a v3 variant; ``rel`` (below the libdir) made odd."""
    def make(box: Box, odd: Callable[[Path], None]) -> tuple[list[str], dict[str, str]]:
        libdir = box.root / LIBDIR
        for level in ("", "glibc-hwcaps/x86-64-v3/"):
            (libdir / level).mkdir(parents=True, exist_ok=True)
            (libdir / level / "libhw.so.1.0").write_bytes(_library())
            (libdir / level / "libhw.so.1").symlink_to("libhw.so.1.0")
        path = libdir / rel
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        odd(path)
        return ["verify", "--no-probe", "--matrix", str(box.root / "tree")], {}
    return make


def _build_in_source(rel: str) -> Callable[[Box, Callable[[Path], None]],
                                           tuple[list[str], dict[str, str]]]:
    """``build`` of a tree whose ``rel`` is odd: refused before any build starts."""
    def make(box: Box, odd: Callable[[Path], None]) -> tuple[list[str], dict[str, str]]:
        argv, env = _in_source(rel)(box, odd)
        return ["build", "-p", "x86-64-v3", "--out", str(box.root / "vecmath/out"), argv[-1]], env
    return make


def _revert(box: Box, odd: Callable[[Path], None]) -> tuple[list[str], dict[str, str]]:
    argv, env = _in_source("debian/hwcapdeb/manifest.json")(box, odd)
    return ["revert", argv[-1]], env


def _profile_dir(box: Box) -> dict[str, str]:
    return {"HWCAPDEB_PROFILE_PATH": str(box.root / "profiles")}


def _convert_writes(box: Box) -> Callable[[str], bool]:
    """convert writes into the tree it converts (when the odd file does not stop it)."""
    return _in(box.root / "vecmath")


SBUILD_HOOK = ["sbuild-hook", "prepare", "--profile", "x86-64-v3", "--arch", "amd64"]
TARGETS: dict[str, Target] = {
    "verify-deb": Target(_plain(["verify", "--no-probe", "{}"], "in/x_1_amd64.deb")),
    "verify-changes": Target(_plain(["verify", "--no-probe", "{}"], "in/x_1_amd64.changes")),
    "verify-buildinfo": Target(_plain(["verify", "--no-probe", "{}"], "in/x_1_amd64.buildinfo")),
    "verify-output-dir": Target(_plain(["verify", "--no-probe", "{dir}"], "in/y_1_amd64.deb")),
    "verify-staging-control": Target(_plain(["verify", "--no-probe", "{up2}"],
                                            "in/stage/DEBIAN/control")),
    "verify-tree-variant": Target(_in_tree("glibc-hwcaps/x86-64-v3/libhw.so.1.0")),
    "verify-tree-variant-link": Target(_in_tree("glibc-hwcaps/x86-64-v3/libhw.so.1")),
    "verify-tree-baseline": Target(_in_tree("libhw.so.1.0")),
    "verify-tree-level-dir": Target(_in_tree("glibc-hwcaps/x86-64-v3")),
    "verify-tree-hwcaps-dir": Target(_in_tree("glibc-hwcaps")),
    "bench-deb": Target(_plain(["bench", "{}", "true"], "in/x_1_amd64.deb")),
    "which-cpu": Target(_plain(["which", "--no-real", "--cpu", "{}", "libc.so.6"], "in/cpu")),
    "cpus-cpu": Target(_plain(["cpus", "--cpu", "{}"], "in/cpu")),
    "profiles-dir": Target(_plain(["profiles"], "profiles/odd.json", _profile_dir)),
    "profile-path": Target(_plain(["convert", "-p", "{}", "{src}"], "in/p.json")),
    "convert-control": Target(_in_source("debian/control"), _convert_writes),
    "convert-rules": Target(_in_source("debian/rules"), _convert_writes),
    "convert-changelog": Target(_in_source("debian/changelog"), _convert_writes),
    "convert-format": Target(_in_source("debian/source/format"), _convert_writes),
    "convert-symbols": Target(_in_source("debian/libvecmath1.symbols"), _convert_writes),
    "convert-manifest": Target(_in_source("debian/hwcapdeb/manifest.json"), _convert_writes),
    "revert-manifest": Target(_revert),
    "convert-state-file": Target(_in_source("debian/hwcapdeb/README"), _convert_writes),
    "convert-state-dir": Target(_in_source("debian/hwcapdeb"), _convert_writes),
    "build-dsc": Target(_plain(["build", "-p", "x86-64-v3", "--out", "{}.out", "{}"], "in/x.dsc"),
                        lambda box: lambda rel: rel.startswith("in/x.dsc.out")),
    "build-changelog": Target(_build_in_source("debian/changelog"), _convert_writes),
    "build-control": Target(_build_in_source("debian/control"), _convert_writes),
    "sbuild-config-check": Target(_plain(["sbuild-config", "--check", "{}"], "in/sbuildrc")),
    "sbuild-hook-dsc": Target(_plain([*SBUILD_HOOK, "--dsc", "{}", "false", "--"], "in/x.dsc")),
}


@pytest.mark.parametrize("kind", sorted(ODD))
@pytest.mark.parametrize("target", sorted(TARGETS))
def test_sweep(box: Box, target: str, kind: str) -> None:
    spec = TARGETS[target]
    argv, env = spec.make(box, ODD[kind])
    check(box, argv, env, writes=spec.writes(box))


@pytest.mark.parametrize("target", ["verify-deb", "which-cpu", "profile-path", "build-dsc"])
def test_sweep_non_utf8_file_name(box: Box, target: str) -> None:
    """The same readers given a name that is not UTF-8 (garbage inside)."""
    spec = TARGETS[target]
    argv, env = spec.make(box, _garbage)
    odd = [a for a in argv if a.startswith(str(box.root / "in"))]
    renamed = {a: a.replace("/in/", "/in/\udcff\udcfe-") for a in odd}
    for old, new in renamed.items():
        if Path(old).exists():
            os.rename(old, new)
    check(box, [renamed.get(a, a) for a in argv], env, writes=spec.writes(box))



@pytest.mark.parametrize("kind", sorted(ODD))
def test_sweep_package_options_file(box: Box, kind: str) -> None:
    """sbuild-hook's per-package options file (read once the .dsc is unpacked)."""
    from hwcapdeb.sbuild_hooks import package_stanza

    path = box.root / "options"
    ODD[kind](path)
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(30)
    try:
        with contextlib.suppress(HwcapdebError):
            package_stanza(path, "vecmath")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("linked", ["debian/hwcapdeb", "debian/source"])
def test_convert_never_writes_through_a_linked_directory(box: Box, src: Path,
                                                         linked: str) -> None:
    outside = box.sentinel.parent
    if (src / linked).exists():
        shutil.copytree(src / linked, outside, dirs_exist_ok=True)
        shutil.rmtree(src / linked)
    (src / linked).symlink_to(outside)
    result = check(box, ["convert", "-p", "x86-64-v3", "--version-suffix", "+hw1", str(src)],
                   codes=(0, 2), writes=_in(src))
    if linked == "debian/hwcapdeb":
        assert result.code == 2 and "symbolic link" in result.err


def test_build_of_a_tree_holding_a_fifo(box: Box, src: Path) -> None:
    """The scratch copy of the tree would block on the FIFO: refused instead."""
    os.mkfifo(src / "src" / "pipe")
    result = check(box, ["build", "-p", "x86-64-v3", "--out", str(box.root / "out"), str(src)],
                   codes=(2,), writes=lambda rel: rel.startswith("out"))
    assert "FIFO" in result.err


@pytest.mark.parametrize("compression", ["xz", "gzip", "zstd", "none"])
def test_dpkg_deb_packages_unpack_whole(box: Box, compression: str) -> None:
    """What dpkg-deb builds unpacks exactly: every compression, links kept inside."""
    staging = box.root / "staging"
    libdir = staging / "usr/lib/x86_64-linux-gnu"
    (libdir / "glibc-hwcaps/x86-64-v3").mkdir(parents=True)
    (libdir / "libhw.so.1.0").write_bytes(b"\x7fELF baseline")
    (libdir / "glibc-hwcaps/x86-64-v3/libhw.so.1.0").write_bytes(b"\x7fELF v3")
    (libdir / "libhw.so.1").symlink_to("libhw.so.1.0")
    (libdir / "glibc-hwcaps/x86-64-v3/libhw.so.1").symlink_to("libhw.so.1.0")
    os.link(libdir / "libhw.so.1.0", libdir / "libhw-hardlink.so.1.0")  # a hard link member
    (staging / "usr/share/doc").mkdir(parents=True)
    (staging / "usr/share/doc/libhw1-dev").symlink_to("/usr/share/doc/libhw1")
    (staging / "DEBIAN").mkdir()
    (staging / "DEBIAN/control").write_text(CONTROL)
    deb = box.root / "libhw1.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build",
                    str(staging), str(deb)], check=True, capture_output=True)
    tree = unpack_deb(deb, box.tmp)
    got = sorted(p.relative_to(tree.root).as_posix() for p in tree.root.rglob("*"))
    want = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*")
                  if "DEBIAN" not in p.parts)
    assert got == want
    assert (tree.root / "usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libhw.so.1"
            ).read_bytes() == b"\x7fELF v3"
    hard = tree.root / "usr/lib/x86_64-linux-gnu/libhw-hardlink.so.1.0"
    assert hard.read_bytes() == b"\x7fELF baseline"
    doc = tree.root / "usr/share/doc/libhw1-dev"
    assert os.readlink(doc) == "libhw1" and doc.resolve().parent == (tree.root / "usr/share/doc")


def test_non_utf8_member_names_are_reported(box: Box) -> None:
    level = "./usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/"
    deb = make_deb(box.root / "odd.deb", [
        reg("./usr/lib/x86_64-linux-gnu/libhw.so.1", b"not an ELF"),
        reg(level + "lib\udcff.so.1", b"not an ELF either"),
        reg(level + "lib\udcfe" * 60 + ".so", b"long"),
    ])
    check(box, ["verify", "--no-probe", "--matrix", str(deb)], codes=(0, 1))
    check(box, ["verify", "--no-probe", "--json", str(deb)], codes=(0, 1))


@pytest.mark.parametrize("flag", ["$(shell touch pwned)", "-O2 -DX", "-D'x'", "`id`", "-fx;id"])
def test_profile_flags_cannot_carry_shell_or_make(box: Box, flag: str) -> None:
    """Flags reach sh and make (DEB_CFLAGS_APPEND): one option each, nothing to expand."""
    profiles = box.root / "profiles"
    profiles.mkdir()
    data = json.loads((EXAMPLE.parent.parent / "profiles/profiles/x86-64-v3.json").read_text())
    data.update(name="mine", aliases=[])
    data["flags"]["gcc"]["cflags"].append(flag)
    (profiles / "mine.json").write_text(json.dumps(data))
    result = check(box, ["profiles"], {"HWCAPDEB_PROFILE_PATH": str(profiles)}, codes=(2,))
    assert "mine.json" in result.err and "does not match" in result.err


# -- mutated real inputs: manifests and CPU dumps ----------------------------------------

_VALUES: list[object] = [None, 1, -1, 1.5, True, "", "x", "../../x", "/etc/passwd", [], {}, ["a"],
                         {"a": 1}, "0" * 64, "777", "debian/hwcapdeb/x", "debian/rules"]


def _json_paths(doc: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found: list[tuple[object, ...]] = []
    items = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) \
        else []
    for key, value in items:
        found += [(*prefix, key), *_json_paths(value, (*prefix, key))]
    return found


def test_mutated_manifests(box: Box, src: Path) -> None:
    """A converted tree's manifest with values swapped for other types, keys dropped and
    paths pointed outside: convert and revert answer HwcapdebError or work, nothing else."""
    import copy

    from hwcapdeb import convert as conv
    from hwcapdeb.profiles import ProfileRegistry

    check(box, ["convert", "-p", "x86-64-v3", "--version-suffix", "+hw1", str(src)], codes=(0,),
          writes=_in(src))
    manifest = src / "debian/hwcapdeb/manifest.json"
    original = json.loads(manifest.read_text())
    options = conv.ConvertOptions(profiles=tuple(ProfileRegistry().resolve_many(["x86-64-v3"])),
                                  version_suffix="+hw1")
    rng = random.Random(3)
    paths = _json_paths(original)
    for _ in range(300):
        doc = copy.deepcopy(original)
        for _ in range(rng.randrange(1, 4)):
            path, node = rng.choice(paths), doc
            with contextlib.suppress(KeyError, IndexError, TypeError):
                for key in path[:-1]:
                    node = node[key]  # type: ignore[index]
                if rng.random() < 0.2 and isinstance(node, dict):
                    node.pop(path[-1], None)
                else:
                    node[path[-1]] = rng.choice(_VALUES)  # type: ignore[index]
        manifest.write_text(json.dumps(doc))
        for plan in (lambda: conv.plan_conversion(src, options), lambda: conv.plan_revert(src)):
            with contextlib.suppress(HwcapdebError):
                plan().diff()


def test_mutated_cpu_dumps(box: Box) -> None:
    """Saved cpuinfo and ld.so diagnostics, cut, bit-flipped, shuffled and with odd values."""
    from hwcapdeb.cpu import load_dump

    rng = random.Random(1)
    dumps = sorted((Path(__file__).parent / "data").glob("*.txt"))
    path = box.root / "dump"
    for _ in range(400):
        data = bytearray(rng.choice(dumps).read_bytes())
        lines = bytes(data).split(b"\n")
        how = rng.randrange(4)
        if how == 0:
            data = data[: rng.randrange(len(data) + 1)]
        elif how == 1:
            for _ in range(rng.randrange(1, 20)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        elif how == 2:
            rng.shuffle(lines)
            data = bytearray(b"\n".join(lines))
        else:
            odd = [b"", b"0x", b"-1", b"9" * 30, b"0xzz", b" \xff\xfe", b" avx2 " * 500]
            data = bytearray(b"\n".join(
                line.split(b"=")[0] + b"=" + rng.choice(odd) if rng.random() < 0.3 else line
                for line in lines))
        path.write_bytes(bytes(data))
        for arch in ("amd64", "ppc64el", "s390x"):
            with contextlib.suppress(HwcapdebError):
                load_dump(path, arch)


def test_random_member_sequences_stay_inside(box: Box) -> None:
    """Random .debs of directories, files, symbolic and hard links with hostile names and
    targets: unpacking refuses or succeeds, writes nothing outside, and every link of the
    result resolves inside the tree."""
    rng = random.Random(7)
    out = str(box.sentinel.parent)
    benign = ["a", "a/b", "a/b/c", "l", "a/l", "./a/./b", "h", "a/h", "a/b/l"]
    names = [*benign * 3, "l/x", "a/l/x", "../x", "/abs", "a/../../x", "l/../x", "l/sentinel"]
    targets = ["a", "a/b", "..", "../..", "../../..", "/", out, out + "/sentinel", "/etc",
               "l", "a/l", ".", "b", "../" * 12 + "etc", "l/.."]
    before = snapshot(box.root, box.tmp)
    for i in range(500):
        members: list[tuple[tarfile.TarInfo, bytes | None]] = []
        for _ in range(rng.randrange(1, 9)):
            name = rng.choice(names)
            kind = rng.randrange(4)
            if kind == 0:
                members.append(folder(name))
            elif kind == 1:
                members.append(reg(name, b"PWNED\n"))
            elif kind == 2:
                members.append(link(name, rng.choice(targets)))
            else:
                members.append(link(name, rng.choice(names + targets), tarfile.LNKTYPE))
        deb = make_deb(box.root / "r.deb", members)
        try:
            tree = unpack_deb(deb, box.tmp)
        except InputError as err:
            assert "\n" not in str(err)
            continue
        finally:
            deb.unlink()
        root = tree.root.resolve()
        for path in tree.root.rglob("*"):
            if path.is_symlink():
                with contextlib.suppress(RuntimeError, OSError):  # a loop: harmless
                    assert path.resolve().is_relative_to(root), (i, path, os.readlink(path))
        shutil.rmtree(tree.root)
    assert snapshot(box.root, box.tmp) == before
    assert box.sentinel.read_text() == "original\n"


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "garbage", "link-loop"])
def test_odd_debug_file(box: Box, kind: str) -> None:
    """--debug-root whose build-id file for the variant is odd: evidence lost, no hang."""
    from hwcapdeb.elf import read_elf

    argv, _ = _in_tree("nothing-odd-here")(box, lambda p: p.write_bytes(b""))
    variant = box.root / LIBDIR / "glibc-hwcaps/x86-64-v3/libhw.so.1.0"
    build_id = read_elf(variant).build_id
    assert build_id
    debug = box.root / "debug/usr/lib/debug/.build-id" / build_id[:2] / f"{build_id[2:]}.debug"
    debug.parent.mkdir(parents=True)
    ODD[kind](debug)
    check(box, [*argv[:-1], "--debug-root", str(box.root / "debug"), argv[-1]])


def test_cpu_name_beats_a_file_of_that_name(box: Box) -> None:
    """--cpu haswell is the CPU even when the current directory has an entry 'haswell';
    ./haswell is the file."""
    os.mkfifo(box.root / "haswell")
    result = check(box, ["cpus", "--json", "--cpu", "haswell"], codes=(0,))
    assert '"haswell"' in result.out
    result = check(box, ["cpus", "--cpu", "./haswell"], codes=(2,))
    assert "FIFO" in result.err
