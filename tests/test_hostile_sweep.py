"""The sweep: every command and reader fed odd files, and mutated real inputs.

Each reader (verify's .deb, .changes, .buildinfo, trees and staging
directories, bench, which/cpus --cpu, profiles, convert's and build's
debian/ files, the manifest, build's .dsc, sbuild-config --check,
sbuild-hook's .dsc and package options) gets each odd file: empty, a
directory, binary garbage, a 17 MiB line, non-UTF-8 text and names, a FIFO,
/dev/zero, a loop of links, a dangling link, a link to "..".  Every run is
checked by tests.hostile.check (exit 0/1/2, one error line, no traceback,
no write outside, no scratch left); a hang is cut by SIGALRM and fails.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from hwcapdeb.debfile import unpack_deb
from hwcapdeb.errors import HwcapdebError, InputError
from tests.hostile import (
    EXAMPLE,
    ODD,
    Box,
    alarm,
    check,
    copy_example,
    folder,
    garbage,
    in_tree,
    inside_tree,
    link,
    make_box,
    make_deb,
    reg,
    snapshot,
)


@pytest.fixture
def box(tmp_path: Path) -> Box:
    return make_box(tmp_path)


@pytest.fixture
def src(box: Box) -> Path:
    return copy_example(box)


@dataclass
class Target:
    """Where a command reads a file: plant the odd entry, return argv, env and writes."""

    make: Callable[[Box, Callable[[Path], None]], tuple[list[str], dict[str, str]]]
    writes: Callable[[Box], Callable[[str], bool] | None] = lambda box: None


def _plain(
    argv: list[str], name: str, env: Callable[[Box], dict[str, str]] | None = None
) -> Callable[[Box, Callable[[Path], None]], tuple[list[str], dict[str, str]]]:
    def make(box: Box, odd: Callable[[Path], None]) -> tuple[list[str], dict[str, str]]:
        path = box.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        odd(path)
        if "{src}" in argv:
            shutil.copytree(EXAMPLE, box.root / "vecmath", symlinks=True)
        words = [
            a.replace("{}", str(path))
            .replace("{dir}", str(path.parent))
            .replace("{up2}", str(path.parent.parent))
            .replace("{src}", str(box.root / "vecmath"))
            for a in argv
        ]
        return words, env(box) if env else {}

    return make


def _in_source(
    rel: str,
) -> Callable[[Box, Callable[[Path], None]], tuple[list[str], dict[str, str]]]:
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


def _build_in_source(
    rel: str,
) -> Callable[[Box, Callable[[Path], None]], tuple[list[str], dict[str, str]]]:
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
    return inside_tree(box.root / "vecmath")


SBUILD_HOOK = ["sbuild-hook", "prepare", "--profile", "x86-64-v3", "--arch", "amd64"]
TARGETS: dict[str, Target] = {
    "verify-deb": Target(_plain(["verify", "--no-probe", "{}"], "in/x_1_amd64.deb")),
    "verify-changes": Target(_plain(["verify", "--no-probe", "{}"], "in/x_1_amd64.changes")),
    "verify-buildinfo": Target(_plain(["verify", "--no-probe", "{}"], "in/x_1_amd64.buildinfo")),
    "verify-output-dir": Target(_plain(["verify", "--no-probe", "{dir}"], "in/y_1_amd64.deb")),
    "verify-staging-control": Target(
        _plain(["verify", "--no-probe", "{up2}"], "in/stage/DEBIAN/control")
    ),
    "verify-tree-variant": Target(in_tree("glibc-hwcaps/x86-64-v3/libhw.so.1.0")),
    "verify-tree-variant-link": Target(in_tree("glibc-hwcaps/x86-64-v3/libhw.so.1")),
    "verify-tree-baseline": Target(in_tree("libhw.so.1.0")),
    "verify-tree-level-dir": Target(in_tree("glibc-hwcaps/x86-64-v3")),
    "verify-tree-hwcaps-dir": Target(in_tree("glibc-hwcaps")),
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
    "build-dsc": Target(
        _plain(["build", "-p", "x86-64-v3", "--out", "{}.out", "{}"], "in/x.dsc"),
        lambda box: lambda rel: rel.startswith("in/x.dsc.out"),
    ),
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
    argv, env = spec.make(box, garbage)
    odd = [a for a in argv if a.startswith(str(box.root / "in"))]
    renamed = {a: a.replace("/in/", "/in/\udcff\udcfe-") for a in odd}
    for old, new in renamed.items():
        if Path(old).exists():
            os.rename(old, new)
    check(box, [renamed.get(a, a) for a in argv], env, writes=spec.writes(box))


@pytest.mark.parametrize("kind", sorted(ODD))
def test_sweep_package_options_file(box: Box, kind: str) -> None:
    """sbuild-hook's per-package options file (read once the .dsc is unpacked)."""
    from hwcapdeb.sbuild.hooks import package_stanza

    path = box.root / "options"
    ODD[kind](path)
    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(30)
    try:
        with contextlib.suppress(HwcapdebError):
            package_stanza(path, "vecmath")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- mutated real inputs: manifests and CPU dumps ----------------------------------------

_VALUES: list[object] = [
    None,
    1,
    -1,
    1.5,
    True,
    "",
    "x",
    "../../x",
    "/etc/passwd",
    [],
    {},
    ["a"],
    {"a": 1},
    "0" * 64,
    "777",
    "debian/hwcapdeb/x",
    "debian/rules",
]


def _json_paths(doc: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    found: list[tuple[object, ...]] = []
    items = (
        doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else []
    )
    for key, value in items:
        found += [(*prefix, key), *_json_paths(value, (*prefix, key))]
    return found


def test_mutated_manifests(box: Box, src: Path) -> None:
    """A converted tree's manifest with values swapped for other types, keys dropped and
    paths pointed outside: convert and revert answer HwcapdebError or work, nothing else."""
    import copy

    from hwcapdeb.convert.conversion import plan_conversion
    from hwcapdeb.convert.options import ConvertOptions
    from hwcapdeb.convert.revert import plan_revert
    from hwcapdeb.profiles import ProfileRegistry

    check(
        box,
        ["convert", "--mode", "embed", "-p", "x86-64-v3", "--version-suffix", "+hw1", str(src)],
        codes=(0,),
        writes=inside_tree(src),
    )
    manifest = src / "debian/hwcapdeb/manifest.json"
    original = json.loads(manifest.read_text())
    options = ConvertOptions(
        profiles=tuple(ProfileRegistry().resolve_many(["x86-64-v3"])), version_suffix="+hw1"
    )
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
        for plan in (lambda: plan_conversion(src, options), lambda: plan_revert(src)):
            with contextlib.suppress(HwcapdebError):
                plan().diff()


def test_mutated_cpu_dumps(box: Box) -> None:
    """Saved cpuinfo and ld.so diagnostics, cut, bit-flipped, shuffled and with odd values."""
    from hwcapdeb.cpu_sources import load_dump

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
            data = bytearray(
                b"\n".join(
                    line.split(b"=")[0] + b"=" + rng.choice(odd) if rng.random() < 0.3 else line
                    for line in lines
                )
            )
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
    targets = [
        "a",
        "a/b",
        "..",
        "../..",
        "../../..",
        "/",
        out,
        out + "/sentinel",
        "/etc",
        "l",
        "a/l",
        ".",
        "b",
        "../" * 12 + "etc",
        "l/..",
    ]
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
