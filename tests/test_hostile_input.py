"""Hostile and odd input: every reader answers in one line, nothing escapes its scratch.

Each test builds its inputs itself (tarfile and ar for crafted .debs,
os.mkfifo for FIFOs, gcc for libraries with odd SONAMEs) and runs the real
command.  Every run is checked the same way (:func:`check`): exit status 0,
1 or 2 (never 70), one ``hwcapdeb: error:`` line when 2, no traceback,
nothing changed in the test's directory except where the command may write,
and the scratch directory ($TMPDIR) empty afterwards.

The sweep of every reader with odd files is tests/test_hostile_sweep.py;
the helpers (the box, check(), crafted .debs) are tests/hostile.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from hwcapdeb.debfile import unpack_deb
from tests.elfbuild import compile_library
from tests.hostile import (
    CONTROL,
    EXAMPLE,
    HWCAPDEB,
    LIBDIR,
    ODD,
    Box,
    check,
    copy_example,
    folder,
    in_tree,
    inside_tree,
    library,
    link,
    make_box,
    make_deb,
    reg,
)


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return make_box(tmp_path)


@pytest.fixture
def src(box: Box) -> Path:
    return copy_example(box)


def crafted(box: Box) -> dict[str, Path]:
    """The .debs of issue 12 and their relatives; each tries to write outside."""
    out = str(box.sentinel)
    rel_out = os.path.relpath(box.sentinel, box.tmp)  # from the scratch dir
    d = box.root / "debs"
    d.mkdir(exist_ok=True)
    pkg = "Version: 1\nArchitecture: amd64\nMaintainer: T <t@example.org>\nDescription: x\n"
    return {
        "hardlink-absolute-then-file": make_deb(
            d / "a.deb", [link("./evil", out, tarfile.LNKTYPE), reg("./evil", b"PWNED\n")]
        ),
        "hardlink-dotdot-then-file": make_deb(
            d / "b.deb",
            [link("./evil", "../../../" + rel_out, tarfile.LNKTYPE), reg("./evil", b"PWNED\n")],
        ),
        "symlink-dir-then-file": make_deb(
            d / "c.deb", [link("./d", str(box.sentinel.parent)), reg("./d/sentinel", b"PWNED\n")]
        ),
        "symlink-file-then-file": make_deb(d / "d.deb", [link("./s", out), reg("./s", b"PWNED\n")]),
        "relative-symlink-up-then-file": make_deb(
            d / "e.deb",
            [
                folder("./usr"),
                link("./usr/up", "../../../../../../../.."),
                reg("./usr/up" + str(box.sentinel), b"PWNED\n"),
            ],
        ),
        "absolute-member": make_deb(d / "f.deb", [reg(out, b"PWNED\n")]),
        "dotdot-member": make_deb(d / "g.deb", [reg("./../../../" + rel_out, b"PWNED\n")]),
        "package-dotdot": make_deb(
            d / "h.deb", [reg("./usr/lib/x")], control=f"Package: ../../escaped\n{pkg}"
        ),
        "package-absolute": make_deb(
            d / "i.deb", [reg("./usr/lib/x")], control=f"Package: {box.root}/absx\n{pkg}"
        ),
        "package-shell": make_deb(
            d / "j.deb", [reg("./usr/lib/x")], control=f"Package: $(touch {box.root}/pwned)\n{pkg}"
        ),
        "member-replaces-a-directory": make_deb(
            d / "k.deb",
            [
                folder("./usr"),
                link("./usr", str(box.sentinel.parent)),
                reg("./usr/sentinel", b"PWNED\n"),
            ],
        ),
    }


CRAFTED = [
    "hardlink-absolute-then-file",
    "hardlink-dotdot-then-file",
    "symlink-dir-then-file",
    "symlink-file-then-file",
    "relative-symlink-up-then-file",
    "absolute-member",
    "dotdot-member",
    "package-dotdot",
    "package-absolute",
    "package-shell",
    "member-replaces-a-directory",
]


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
    changes.write_text(f"Format: 1.8\nSource: x\nFiles:\n 0123 1 libs optional {deb.name}\n")
    result = check(box, ["verify", "--no-probe", str(changes)], codes=(2,))
    assert "hard link" in result.err


def test_legit_links_unpack_inside_the_tree(box: Box) -> None:
    """Absolute and climbing links of a real package stay usable, and stay inside."""
    deb = make_deb(
        box.root / "ok.deb",
        [
            folder("./usr/"),
            folder("./usr/lib/"),
            reg("./usr/lib/libhw.so.1.0", b"ELF?\n"),
            link("./usr/lib/libhw.so.1", "libhw.so.1.0"),
            link("./usr/lib/libhw.so", "/usr/lib/libhw.so.1"),
            link("./usr/lib/far", "../../../../../../etc"),
            link("./usr/lib/same", "./usr/lib/libhw.so.1.0", tarfile.LNKTYPE),
            reg("./usr/lib/libhw.so.1.0", b"replaced\n"),  # replaces, never writes through
        ],
    )
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


@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"]
)
def test_interrupt_removes_the_scratch_directory(box: Box, sig: int, code: int) -> None:
    deb = _slow_deb(box.root / "slow.deb")
    proc = subprocess.Popen(
        [str(HWCAPDEB), "verify", "--no-probe", str(deb)],
        env={**os.environ, **box.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
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
    deb = make_deb(
        box.root / "half.deb",
        [folder("./usr/"), reg("./usr/a"), reg("./usr/b"), reg("/abs", b"PWNED\n")],
    )
    result = check(box, ["verify", "--no-probe", str(deb)], codes=(2,))
    assert "absolute" in result.err


# -- what gave internal errors (exit 70) ------------------------------------------------


@pytest.mark.parametrize(
    "soname",
    ["lib" + "a" * 294 + ".so.1", "lib\udcff\udcfe.so.1"],
    ids=["300-characters", "not-utf8"],
)
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
    result = check(
        box, ["profiles", "--json"], {"HWCAPDEB_PROFILE_PATH": str(profiles)}, codes=(0,)
    )
    warnings = [line for line in result.err.splitlines() if "warning" in line]
    assert len(warnings) == 1, result.err
    assert "x86-64-v3" in warnings[0] and "overrides" in warnings[0]
    assert '"mine"' in result.out
    data.update(name="mine", aliases=["v3"])
    (profiles / "mine.json").write_text(json.dumps(data))
    result = check(box, ["profiles"], {"HWCAPDEB_PROFILE_PATH": str(profiles)}, codes=(0,))
    assert "alias 'v3' already names profile 'x86-64-v3'" in result.err


def test_non_utf8_source_format(box: Box, src: Path) -> None:
    (src / "debian/source/format").write_bytes(b"3.0 (qu\xffilt)\n")
    result = check(box, ["convert", "--mode", "embed", "-p", "x86-64-v3", str(src)], codes=(2,))
    assert "debian/source/format" in result.err and "UTF-8" in result.err


MANIFESTS = {
    "not-json": b"{files: ",
    "not-utf8": b'{"files": {"\xff": 1}}',
    "a-list": b"[1, 2]",
    "files-missing": b'{"format": 1}',
    "files-a-list": b'{"files": []}',
    "entry-a-string": b'{"files": {"debian/rules": "x"}}',
    "original-a-number": b'{"files": {"debian/rules": {"original": 5, "sha256": "'
    + b"0" * 64
    + b'"}}}',
    "sha-missing": b'{"files": {"debian/rules": {"original": null}}}',
    "deep": b'{"files": ' + b"[" * 5000 + b"]" * 5000 + b"}",
}


@pytest.mark.parametrize("case", sorted(MANIFESTS))
@pytest.mark.parametrize("command", ["convert", "revert"])
def test_malformed_manifest(box: Box, src: Path, case: str, command: str) -> None:
    (src / "debian/hwcapdeb").mkdir()
    (src / "debian/hwcapdeb/manifest.json").write_bytes(MANIFESTS[case])
    argv = [command, str(src)] + (
        ["--mode", "embed", "-p", "x86-64-v3"] if command == "convert" else []
    )
    result = check(box, argv, codes=(2,))
    assert "manifest" in result.err


def _converted(box: Box, src: Path) -> dict[str, object]:
    check(
        box,
        ["convert", "--mode", "embed", "-p", "x86-64-v3", str(src)],
        codes=(0,),
        writes=inside_tree(src),
    )
    doc: dict[str, object] = json.loads((src / "debian/hwcapdeb/manifest.json").read_text())
    return doc


@pytest.mark.parametrize("where", ["dotdot", "absolute", "outside-state-dir", "through-link"])
@pytest.mark.parametrize(
    "command", [["convert", "--mode", "embed", "-p", "x86-64-v3", "--dry-run"], ["revert"]]
)
def test_manifest_original_outside_the_tree(
    box: Box, src: Path, where: str, command: list[str]
) -> None:
    doc = _converted(box, src)
    secret = box.root / "outside" / "secret"
    secret.write_text("Source: secret-text\n")
    entry = doc["files"]["debian/control"] = {  # type: ignore[index]
        "original": None,
        "sha256": "0" * 64,
    }
    target = {
        "dotdot": "debian/hwcapdeb/../../../outside/secret",
        "absolute": str(secret),
        "outside-state-dir": "debian/control",
        "through-link": "debian/hwcapdeb/original/outlink/secret",
    }[where]
    if where == "through-link":
        (src / "debian/hwcapdeb/original").mkdir(exist_ok=True)
        (src / "debian/hwcapdeb/original/outlink").symlink_to(secret.parent)
    entry.update(
        original=target,
        original_sha256=hashlib.sha256(secret.read_bytes()).hexdigest(),
        original_mode="644",
    )
    (src / "debian/hwcapdeb/manifest.json").write_text(json.dumps(doc))
    result = check(box, [*command, str(src)], codes=(2,))
    assert "secret-text" not in result.out + result.err


def test_manifest_file_key_outside_the_tree(box: Box, src: Path) -> None:
    doc = _converted(box, src)
    doc["files"]["../../outside/sentinel"] = {
        "original": None,  # type: ignore[index]
        "sha256": "0" * 64,
    }
    (src / "debian/hwcapdeb/manifest.json").write_text(json.dumps(doc))
    result = check(box, ["revert", str(src)], codes=(2,))
    assert "leaves the tree" in result.err


@pytest.mark.parametrize("name", ["../..", "$(touch pwned)", "/abs/x", "Lib", "a", "x;y"])
def test_bad_binary_package_name(box: Box, src: Path, name: str) -> None:
    control = src / "debian/control"
    control.write_text(control.read_text().replace("Package: libvecmath1", f"Package: {name}", 1))
    result = check(box, ["convert", "--mode", "embed", "-p", "x86-64-v3", str(src)], codes=(2,))
    assert "Package" in result.err and "5.6.1" in result.err
    assert not (src / "debian/hwcapdeb").exists() and not (box.root / "pwned").exists()


def test_bad_source_name(box: Box, src: Path) -> None:
    control = src / "debian/control"
    control.write_text(control.read_text().replace("Source: vecmath", "Source: ../x", 1))
    result = check(box, ["convert", "--mode", "embed", "-p", "x86-64-v3", str(src)], codes=(2,))
    assert "Source" in result.err and "5.6.1" in result.err


def test_unreadable_inputs_without_root_privileges(box: Box) -> None:
    """As nobody (root reads everything): unreadable .deb, profile dir entry and CPU dump."""
    setpriv = shutil.which("setpriv")
    if setpriv is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to drop privileges")
    probe = subprocess.run(
        [
            setpriv,
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            str(HWCAPDEB),
            "--version",
        ],
        capture_output=True,
        check=False,
    )
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
        for hidden in (
            "glibc-hwcaps",
            "glibc-hwcaps/x86-64-v3",
            "glibc-hwcaps/x86-64-v3/libhw.so.1.0",
            "libhw.so.1.0",
        ):
            libdir = world / f"tree{len(trees)}/usr/lib/x86_64-linux-gnu"
            for level in ("", "glibc-hwcaps/x86-64-v3/"):
                (libdir / level).mkdir(parents=True, exist_ok=True)
                (libdir / level / "libhw.so.1.0").write_bytes(library())
                (libdir / level / "libhw.so.1").symlink_to("libhw.so.1.0")
            for path in [world, *libdir.relative_to(world).parents]:
                (world / path).chmod(0o755)
            for path in (libdir / "glibc-hwcaps").rglob("*"):
                if not path.is_symlink():
                    path.chmod(0o755 if path.is_dir() else 0o644)
            (libdir / hidden).chmod(0o000)
            trees.append(libdir.parents[2])
        cases = [
            ["verify", "--no-probe", str(world / "x.deb")],
            ["verify", "--no-probe", str(secret)],
            ["cpus", "--cpu", str(world / "cpuinfo")],
            ["which", "--no-real", "--cpu", str(world / "cpuinfo"), "libc.so.6"],
            ["convert", "-p", str(world / "p.json"), str(world)],
            *(["verify", "--no-probe", "--matrix", str(tree)] for tree in trees),
        ]
        env = {
            "PATH": os.environ["PATH"],
            "TMPDIR": str(scratch),
            "HOME": str(scratch),
            "LC_ALL": "C.UTF-8",
        }
        for argv in cases:
            proc = subprocess.run(
                [
                    setpriv,
                    "--reuid=nobody",
                    "--regid=nogroup",
                    "--clear-groups",
                    str(HWCAPDEB),
                    *argv,
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert proc.returncode in (1, 2), (argv, proc.stderr)
            assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, argv
            assert not list(scratch.iterdir()), argv
    finally:
        shutil.rmtree(world)


@pytest.mark.parametrize("linked", ["debian/hwcapdeb", "debian/source"])
def test_convert_never_writes_through_a_linked_directory(box: Box, src: Path, linked: str) -> None:
    outside = box.sentinel.parent
    if (src / linked).exists():
        shutil.copytree(src / linked, outside, dirs_exist_ok=True)
        shutil.rmtree(src / linked)
    (src / linked).symlink_to(outside)
    result = check(
        box,
        ["convert", "--mode", "embed", "-p", "x86-64-v3", "--version-suffix", "+hw1", str(src)],
        codes=(0, 2),
        writes=inside_tree(src),
    )
    if linked == "debian/hwcapdeb":
        assert result.code == 2 and "symbolic link" in result.err


def test_build_of_a_tree_holding_a_fifo(box: Box, src: Path) -> None:
    """The scratch copy of the tree would block on the FIFO: refused instead."""
    os.mkfifo(src / "src" / "pipe")
    result = check(
        box,
        ["build", "-p", "x86-64-v3", "--out", str(box.root / "out"), str(src)],
        codes=(2,),
        writes=lambda rel: rel.startswith("out"),
    )
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
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(staging), str(deb)],
        check=True,
        capture_output=True,
    )
    tree = unpack_deb(deb, box.tmp)
    got = sorted(p.relative_to(tree.root).as_posix() for p in tree.root.rglob("*"))
    want = sorted(
        p.relative_to(staging).as_posix() for p in staging.rglob("*") if "DEBIAN" not in p.parts
    )
    assert got == want
    assert (
        tree.root / "usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libhw.so.1"
    ).read_bytes() == b"\x7fELF v3"
    hard = tree.root / "usr/lib/x86_64-linux-gnu/libhw-hardlink.so.1.0"
    assert hard.read_bytes() == b"\x7fELF baseline"
    doc = tree.root / "usr/share/doc/libhw1-dev"
    assert os.readlink(doc) == "libhw1" and doc.resolve().parent == (tree.root / "usr/share/doc")


def test_non_utf8_member_names_are_reported(box: Box) -> None:
    level = "./usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/"
    deb = make_deb(
        box.root / "odd.deb",
        [
            reg("./usr/lib/x86_64-linux-gnu/libhw.so.1", b"not an ELF"),
            reg(level + "lib\udcff.so.1", b"not an ELF either"),
            reg(level + "lib\udcfe" * 60 + ".so", b"long"),
        ],
    )
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


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "directory", "garbage", "link-loop"])
def test_odd_debug_file(box: Box, kind: str) -> None:
    """--debug-root whose build-id file for the variant is odd: evidence lost, no hang."""
    from hwcapdeb.elf import read_elf

    argv, _ = in_tree("nothing-odd-here")(box, lambda p: p.write_bytes(b""))
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
