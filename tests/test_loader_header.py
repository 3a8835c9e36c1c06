"""What the loader does with a glibc-hwcaps file it cannot load, model against real ld.so.

A real gcc-built variant has one byte of its ELF header changed (or is replaced
by a directory, an object file): glibc's open_verify() then stops the whole
search with an error, or skips the file, and the model must say the same.  The
real loader runs a program that NEEDs the library (the NEEDED path, not a
preload).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from hwcapdeb.cpu_sources import cpu_model
from hwcapdeb.glibc_rules import REFUSED
from hwcapdeb.loader import resolve
from hwcapdeb.probe import probe
from hwcapdeb.profiles import architecture
from tests.elfbuild import compile_library

SONAME = "libhwtest.so.1"
LEVEL = "x86-64-v2"  # every amd64 test machine runs v2 code
pytestmark = pytest.mark.skipif(
    not os.path.exists(architecture("amd64").loader or ""), reason="needs the amd64 loader"
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A real library and a program linked against it."""
    base = tmp_path_factory.mktemp("header")
    lib = compile_library(base / SONAME, soname=SONAME)
    main_c = base / "main.c"
    main_c.write_text(
        "float hw_dot(const float *, const float *, unsigned long);\n"
        "int main(void) { float a = 1; return (int) hw_dot(&a, &a, 1) - 1; }\n"
    )
    prog = base / "prog"
    subprocess.run(["gcc", "-o", str(prog), str(main_c), str(lib)], check=True)
    return lib, prog


def _byte(offset: int, value: int) -> Callable[[Path, Path], None]:
    def change(lib: Path, target: Path) -> None:
        data = bytearray(lib.read_bytes())
        data[offset] = value
        target.write_bytes(bytes(data))

    return change


def _bytes(*changes: tuple[int, int]) -> Callable[[Path, Path], None]:
    def change(lib: Path, target: Path) -> None:
        data = bytearray(lib.read_bytes())
        for offset, value in changes:
            data[offset] = value
        target.write_bytes(bytes(data))

    return change


def _directory(lib: Path, target: Path) -> None:
    target.mkdir()


def _object_file(lib: Path, target: Path) -> None:
    source = target.parent / "object.c"
    source.write_text("float hw_dot(void) { return 0; }\n")
    subprocess.run(["gcc", "-c", "-fPIC", "-o", str(target), str(source)], check=True)
    source.unlink()


#: (case, how the v2 file is made, glibc's complaint); None: the file loads or is skipped
CASES: list[tuple[str, Callable[[Path, Path], None], str | None]] = [
    ("a directory named like the SONAME", _directory, "cannot read file data"),
    ("an object file (ET_REL)", _object_file, "only ET_DYN and ET_EXEC can be loaded"),
    ("big-endian data byte", _byte(5, 2), "ELF file data encoding not little-endian"),
    ("EI_VERSION 2", _byte(6, 2), "ELF file version ident does not match current one"),
    ("OS ABI FreeBSD", _byte(7, 9), "ELF file OS ABI invalid"),
    ("SYSV ABI version 1", _byte(8, 1), "ELF file ABI version invalid"),
    ("GNU ABI version 4", _bytes((7, 3), (8, 4)), "ELF file ABI version invalid"),
    ("GNU ABI version 3", _bytes((7, 3), (8, 3)), None),
    ("nonzero e_ident padding", _byte(12, 1), "nonzero padding in e_ident"),
    ("e_version 2", _byte(20, 2), "ELF file version does not match current one"),
    ("ET_CORE", _byte(16, 4), "only ET_DYN and ET_EXEC can be loaded"),
    ("ET_EXEC", _byte(16, 2), "cannot dynamically load executable"),
    ("e_phentsize 32", _byte(54, 32), "ELF file's phentsize not the expected size"),
    # the class is checked before the padding, the machine before e_type: skipped
    ("32-bit class with padding", _bytes((4, 1), (12, 1)), None),
    ("aarch64 ET_REL", _bytes((18, 183), (19, 0), (16, 1)), None),
]


@pytest.mark.parametrize(("case", "make", "complaint"), CASES, ids=[c[0] for c in CASES])
def test_model_and_real_loader_agree_on_a_bad_variant(
    built: tuple[Path, Path],
    tmp_path: Path,
    case: str,
    make: Callable[[Path, Path], None],
    complaint: str | None,
) -> None:
    lib, prog = built
    libdir = tmp_path / "lib"
    (libdir / "glibc-hwcaps" / LEVEL).mkdir(parents=True)
    shutil.copy(lib, libdir / SONAME)
    variant = libdir / "glibc-hwcaps" / LEVEL / SONAME
    make(lib, variant)

    real = probe(SONAME, library_path=[libdir], program=prog)
    model = resolve(SONAME, cpu_model("host"), library_path=[libdir], system=False)
    if complaint is None:
        assert real.error is None, real.error
        assert model.path == real.path, model.trace
        return
    assert real.path is None and real.error and complaint in real.error, real.error
    assert model.path is None, model.trace
    assert model.error == f"{variant}: {complaint}" or (
        model.error and model.error.startswith(f"{variant}: {complaint}")
    ), model.error
    assert model.trace[-1].verdict == REFUSED and model.trace[-1].path == str(variant)
