"""Differential test: the loader model (hwcapdeb.loader.resolve) against the real loader
on generated cases.

Hypothesis draws a layout (directories with glibc-hwcaps/ subdirectories, SONAME links,
real names only, files built by gcc for each level or carrying an ELF defect, a
dependency present or not), a search path string (absolute, relative and empty
entries, ':' and ';', ',' inside a name, $ORIGIN, $LIB, ${LIB}, $PLATFORM, trailing
slashes), GLIBC_TUNABLES masks (with other tunables and trailing ':'), hwcaps
prepend/mask lists and a CPU (this machine, or qemu-user's qemu64, Nehalem and Haswell).
Each case runs the real loader (hwcapdeb.probe, the ground truth) and the model, from
the same current directory: both must load the same file, or both must fail.

The default profile is bounded for CI (HWCAPDEB_DIFF_EXAMPLES, default 150, derandomized);
run more with e.g. ``HWCAPDEB_DIFF_EXAMPLES=2000 pytest tests/test_loader_differential.py``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwcapdeb.cpu import apply_tunables
from hwcapdeb.cpu_sources import cpu_model
from hwcapdeb.loader import resolve
from hwcapdeb.probe import default_program, probe
from hwcapdeb.profiles import architecture
from tests.elfbuild import compile_library

SONAME = "libdiff.so.1"
REALNAME = "libdiff.so.1.0.0"
DEP = "libdiffdep.so.2"
AMD64 = architecture("amd64")
EXAMPLES = int(os.environ.get("HWCAPDEB_DIFF_EXAMPLES", "150"))
QEMU = shutil.which("qemu-x86_64") is not None
pytestmark = pytest.mark.skipif(
    not os.path.exists(AMD64.loader or "") or shutil.which("gcc") is None,
    reason="needs the amd64 loader and gcc",
)

#: what a slot of the layout holds: a level build, or a file the loader refuses or skips
KINDS = ("baseline", "v2", "v3", "v4", "pie", "exec", "nophdr", "nodynamic", "noload",
         "misaligned", "needs-missing", "needs-dep", "needs-dep-origin", "text", "empty",
         "wrong-machine", "directory")
SLOTS = ("plain", "x86-64-v2", "x86-64-v3", "x86-64-v4", "custom")
#: where layout directories may live, relative to the example's directory (the cwd)
PLACES = ("", "d0", "d1", f"lib/{AMD64.triplet}", "p/x86_64", "p/haswell", "d0,d1")
#: where libdiffdep.so.2 may be: beside the layouts, or in a dep/ directory that a
#: DT_RUNPATH of $ORIGIN/dep reaches from where the variant was found
DEP_PLACES = (*PLACES, "dep", "d0/dep", "d0/glibc-hwcaps/x86-64-v2/dep",
              "d0/glibc-hwcaps/x86-64-v3/dep", "d1/glibc-hwcaps/x86-64-v4/dep")
CPUS = ("host", "x86_64", "nehalem", "haswell") if QEMU else ("host",)
MASKABLE = ("AVX512F", "AVX2", "BMI2", "FMA", "SSE4_2", "POPCNT", "SSSE3", "AVX512VL",
            "AVX512BW", "AVX", "XSAVE", "LZCNT", "MOVBE")


# -- the files, built once per session --------------------------------------------------


def _phdrs(data: bytearray) -> list[int]:
    (phoff,) = struct.unpack_from("<Q", data, 32)
    (phnum,) = struct.unpack_from("<H", data, 56)
    return [phoff + 56 * i for i in range(phnum)]


def _defect(data: bytes, kind: str) -> bytes:
    buf = bytearray(data)
    if kind == "nophdr":
        struct.pack_into("<H", buf, 56, 0)
    elif kind in ("nodynamic", "noload"):
        wanted = 2 if kind == "nodynamic" else 1  # PT_DYNAMIC, PT_LOAD
        for off in _phdrs(buf):
            if struct.unpack_from("<I", buf, off)[0] == wanted:
                struct.pack_into("<I", buf, off, 0)  # PT_NULL
    elif kind == "misaligned":
        for off in _phdrs(buf):
            if struct.unpack_from("<I", buf, off)[0] == 1:
                vaddr = struct.unpack_from("<Q", buf, off + 16)[0]
                struct.pack_into("<QQ", buf, off + 16, vaddr + 16, vaddr + 16)
                break
    elif kind == "wrong-machine":
        struct.pack_into("<H", buf, 18, 183)  # EM_AARCH64: skipped, the search goes on
    return bytes(buf)


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One file per kind (gcc-built, or a built library with one defect)."""
    out = tmp_path_factory.mktemp("difffiles")
    made: dict[str, Path] = {}
    for kind, variant in (("baseline", "baseline"), ("v2", "x86-64-v2"), ("v3", "x86-64-v3"),
                          ("v4", "x86-64-v4")):
        made[kind] = compile_library(out / kind, soname=SONAME, variant=variant)
    made["dep"] = compile_library(out / "dep", soname=DEP)
    missing = compile_library(out / "libdiffgone.so.7", soname="libdiffgone.so.7")
    made["needs-missing"] = compile_library(
        out / "needs-missing", soname=SONAME,
        cflags=["-march=x86-64", "-Wl,--no-as-needed", str(missing)])
    missing.unlink()
    made["needs-dep"] = compile_library(
        out / "needs-dep", soname=SONAME, cflags=["-march=x86-64", "-Wl,--no-as-needed",
                                                  str(made["dep"])])
    made["needs-dep-origin"] = compile_library(
        out / "needs-dep-origin", soname=SONAME,
        cflags=["-march=x86-64", "-Wl,--no-as-needed", str(made["dep"]),
                "-Wl,--enable-new-dtags,-rpath,$ORIGIN/dep"])
    main = out / "main.c"
    main.write_text("int main(void) { return 0; }\n")
    for kind, flags in (("pie", ["-fPIE", "-pie"]), ("exec", ["-fno-PIE", "-no-pie"])):
        made[kind] = out / kind
        subprocess.run(["gcc", *flags, f"-Wl,-soname,{SONAME}", "-o", str(made[kind]),
                        str(main)], check=True)
    base = made["baseline"].read_bytes()
    for kind in ("nophdr", "nodynamic", "noload", "misaligned", "wrong-machine"):
        made[kind] = out / kind
        made[kind].write_bytes(_defect(base, kind))
    made["text"] = out / "text"
    made["text"].write_text("INPUT(-ldiff)\n")
    made["empty"] = out / "empty"
    made["empty"].write_bytes(b"")
    return made


# -- the cases -------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    kind: str
    style: str  # "file": the SONAME itself; "link": SONAME -> real name; "real": real name only


@dataclass(frozen=True)
class Case:
    layout: dict[str, dict[str, Entry]]  # place -> slot -> entry
    deps: frozenset[str]  # places holding libdiffdep.so.2
    path: list[tuple[str, str]]  # (entry kind, place), joined by separators
    separators: list[str]
    tunables: str | None
    prepend: str | None
    mask: str | None
    cpu: str


GOOD = ("baseline", "v2", "v3", "v4")
#: level builds three times as likely as each defect: most cases load something
ENTRIES = st.builds(Entry, st.sampled_from(GOOD * 6 + KINDS),
                    st.sampled_from(("file", "link", "link", "real")))
PATH_FORMS = ("abs", "abs", "abs", "rel", "empty", "origin", "origin-curly", "lib",
              "lib-curly", "platform", "platform-curly", "comma", "slash", "nothing", "libx",
              "origin-open")
NAMES = st.sampled_from(("x86-64-v2", "x86-64-v3", "x86-64-v4", "custom", "nope", ""))


def _list(names: list[str], sep: str) -> str:
    return sep.join(names)


TUNABLES = st.one_of(
    st.none(),
    st.builds(
        lambda masks, before, trailing: (
            ("glibc.malloc.check=0:" if before else "")
            + "glibc.cpu.hwcaps=" + ",".join(f"-{m}" for m in masks)
            + (":" if trailing else "")),
        st.lists(st.sampled_from(MASKABLE), max_size=3, unique=True),
        st.booleans(), st.booleans()),
)
LISTS = st.one_of(st.none(), st.none(), st.builds(_list, st.lists(NAMES, max_size=3),
                                                   st.sampled_from((":", ",", "::"))))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    layout = draw(st.dictionaries(
        st.sampled_from(PLACES),
        st.dictionaries(st.sampled_from(SLOTS), ENTRIES, min_size=1, max_size=4),
        min_size=1, max_size=3))
    if draw(st.integers(0, 3)):  # mostly a baseline to fall back on, as packages ship
        layout[sorted(layout)[0]].setdefault("plain", Entry("baseline", "link"))
    # mostly the layout's own places (hypothesis favours small integers: 0 is the layout)
    places = st.sampled_from(PLACES) if draw(st.integers(0, 4)) == 4 else \
        st.sampled_from(sorted(layout))
    return Case(
        layout=layout,
        deps=draw(st.frozensets(st.sampled_from(DEP_PLACES), max_size=2)),
        path=draw(st.lists(st.tuples(st.sampled_from(PATH_FORMS), places), min_size=1,
                                max_size=4)),
        separators=draw(st.lists(st.sampled_from((":", ";")), min_size=4, max_size=4)),
        tunables=draw(TUNABLES),
        prepend=draw(LISTS),
        mask=draw(LISTS),
        cpu=draw(st.sampled_from(CPUS)),
    )


CASES = cases()


def _entry_text(form: str, place: str, base: Path, up: str) -> str:
    where = base / place if place else base
    return {
        "abs": str(where),
        "rel": place,
        "empty": "",
        "origin": f"$ORIGIN/{up}{where}",
        "origin-curly": f"${{ORIGIN}}/{up}{where}",
        "lib": f"{base}/$LIB",
        "lib-curly": "${LIB}",
        "platform": f"{base}/p/$PLATFORM",
        "comma": f"{base}/d0,d1",
        "slash": f"{where}//",
        "nothing": f"{base}/nonexistent",
        "libx": f"{base}/$LIBX",
        "platform-curly": f"{base}/p/${{PLATFORM}}",
        "origin-open": f"${{ORIGIN/{up}{where}",  # no closing brace: no token, a literal
    }[form]


def materialize(case: Case, base: Path, files: dict[str, Path]) -> str:
    """Lay the case out below ``base``; returns the search path string."""
    for place, slots in case.layout.items():
        libdir = base / place
        for slot, entry in slots.items():
            where = libdir if slot == "plain" else libdir / "glibc-hwcaps" / slot
            where.mkdir(parents=True, exist_ok=True)
            if entry.kind == "directory":
                (where / SONAME).mkdir(exist_ok=True)
                continue
            name = SONAME if entry.style == "file" else REALNAME
            shutil.copyfile(files[entry.kind], where / name)
            if entry.style == "link":
                os.symlink(REALNAME, where / SONAME)
    for place in case.deps:
        (base / place).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files["dep"], base / place / DEP)
    up = "../" * (len(default_program().parent.parts) - 1)
    texts = [_entry_text(form, place, base, up) for form, place in case.path]
    # separators between entries only: a last empty entry stays ("dir:" is dir and the cwd)
    return texts[0] + "".join(s + t for s, t in zip(case.separators, texts[1:], strict=False))


def _norm(path: Path | None) -> str | None:
    return os.path.normpath(os.path.abspath(path)) if path is not None else None


_counter = itertools.count()
RESULTS: dict[str, int] = {"examples": 0, "loaded": 0, "failed": 0}


def check(case: Case, root: Path, files: dict[str, Path]) -> None:
    base = root / f"case{next(_counter)}"
    base.mkdir()
    path_string = materialize(case, base, files)
    base_cpu = cpu_model(case.cpu)
    qemu = None if case.cpu == "host" else base_cpu.qemu_cpu
    dirs = [path_string] if path_string else []
    with contextlib.chdir(base):
        real = probe(SONAME, library_path=dirs, tunables=case.tunables,
                     hwcaps_prepend=case.prepend, hwcaps_mask=case.mask, qemu_cpu=qemu)
        model = resolve(SONAME, apply_tunables(base_cpu, case.tunables), library_path=dirs,
                        hwcaps_prepend=case.prepend, hwcaps_mask=case.mask,
                        program_origin=default_program().parent)
        want, got = _norm(real.path), _norm(model.path)
    RESULTS["examples"] += 1
    RESULTS["loaded" if want else "failed"] += 1
    RESULTS[case.cpu] = RESULTS.get(case.cpu, 0) + 1
    if os.environ.get("HWCAPDEB_DIFF_DEBUG"):
        print(case.cpu, want or real.error, repr(path_string), case.layout)
    trace = "\n".join(f"  {s.verdict} {s.path}: {s.reason}" for s in model.trace)
    assert got == want, (
        f"\nlibrary path: {path_string!r}\nreal loader: {want or real.error}\n"
        f"model: {got or model.error}\nran: {real.command}\ntrace:\n{trace}")
    shutil.rmtree(base)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 200,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow, HealthCheck.data_too_large])
@given(case=CASES)
def test_model_agrees_with_the_real_loader(
    case: Case, files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> None:
    check(case, _scratch(tmp_path_factory), files)


_SCRATCH: list[Path] = []


def _scratch(factory: pytest.TempPathFactory) -> Path:
    """One directory for every example of the session (each gets its own case<N>/)."""
    if not _SCRATCH:
        _SCRATCH.append(factory.mktemp("diffcases"))
    return _SCRATCH[0]


def test_report_counts() -> None:
    """Runs after the property: how many cases loaded a file and how many failed."""
    if RESULTS["examples"]:
        print(f"differential: {RESULTS}")
        assert RESULTS["loaded"] and RESULTS["failed"]  # the generator reaches both outcomes
