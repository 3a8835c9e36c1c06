"""Facts about one ELF file, read with pyelftools.

This module owns ELF reading: SONAME, NEEDED, RPATH/RUNPATH, exported
dynamic symbols with their versions, build-id, and the x86 ISA marker.
pyelftools parses ``.note.gnu.property`` into (pr_type, pr_data) pairs; the
x86 ISA bits are kept raw here and decoded where glibc's rule about them lives
(:func:`hwcapdeb.glibc_rules.decode_isa_needed`).  The code the instruction
audit reads (sections, function boundaries, DWARF producers) is
:mod:`hwcapdeb.elf_code`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from elftools.common.exceptions import ELFError
from elftools.elf.dynamic import DynamicSection
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import NoteSection, Section, SymbolTableSection

from hwcapdeb.errors import InputError
from hwcapdeb.validate import check_file_name, open_regular

GNU_PROPERTY_X86_ISA_1_NEEDED = 0xC0008002
GNU_PROPERTY_X86_ISA_1_USED = 0xC0010002  # ignored by the loader, shown for information

ELF_MAGIC = b"\x7fELF"


def is_elf(path: Path) -> bool:
    """True if ``path`` is a regular file starting with the ELF magic."""
    try:
        with open_elf(path) as fh:
            return fh.read(4) == ELF_MAGIC
    except (OSError, InputError):
        return False


def open_elf(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file: a FIFO in a tree never blocks."""
    return os.fdopen(open_regular(path, what="ELF file"), "rb")


@dataclass(frozen=True)
class DynamicSymbol:
    name: str
    version: str | None  # symbol version (e.g. "LIBFOO_1.0"), None if unversioned
    kind: str  # STT_FUNC, STT_OBJECT, STT_GNU_IFUNC, ...
    binding: str  # STB_GLOBAL, STB_WEAK, ...

    def key(self) -> tuple[str, str | None]:
        return (self.name, self.version)


@dataclass(frozen=True)
class ElfFacts:
    """What hwcapdeb needs to know about one ELF object."""

    path: Path
    elf_class: int  # 32 or 64
    machine: str  # e_machine, e.g. EM_X86_64
    elf_type: str  # ET_DYN, ET_EXEC, ET_REL
    soname: str | None
    needed: tuple[str, ...]
    rpath: tuple[str, ...]
    runpath: tuple[str, ...]
    isa_needed: int | None  # GNU_PROPERTY_X86_ISA_1_NEEDED bits, None if absent
    build_id: str | None
    has_debug_info: bool
    exports: frozenset[DynamicSymbol] = field(default_factory=frozenset)

    @property
    def is_shared_library(self) -> bool:
        return self.elf_type == "ET_DYN" and self.soname is not None

    @property
    def isa_needed_names(self) -> list[str]:
        from hwcapdeb.glibc_rules import decode_isa_needed  # glibc_rules reads ElfFacts

        return decode_isa_needed(self.isa_needed or 0)


def _note_properties(elf: ELFFile) -> dict[int, Any]:
    props: dict[int, Any] = {}
    for section in elf.iter_sections():
        if not isinstance(section, NoteSection):
            continue
        for note in section.iter_notes():
            if note["n_type"] == "NT_GNU_PROPERTY_TYPE_0":
                for prop in note["n_desc"]:
                    props[prop.pr_type if isinstance(prop.pr_type, int) else -1] = prop.pr_data
                    # pyelftools names the types it knows; keep their raw value too
                    raw = _property_type_value(prop.pr_type)
                    if raw is not None:
                        props[raw] = prop.pr_data
    return props


def _property_type_value(pr_type: Any) -> int | None:
    if isinstance(pr_type, int):
        return pr_type
    known = {
        "GNU_PROPERTY_X86_ISA_1_NEEDED": GNU_PROPERTY_X86_ISA_1_NEEDED,
        "GNU_PROPERTY_X86_ISA_1_USED": GNU_PROPERTY_X86_ISA_1_USED,
    }
    return known.get(str(pr_type))


def _exports(elf: ELFFile) -> frozenset[DynamicSymbol]:
    dynsym = elf.get_section_by_name(".dynsym")
    if not isinstance(dynsym, SymbolTableSection):
        return frozenset()
    versions = _symbol_versions(elf)
    result = set()
    for index, sym in enumerate(dynsym.iter_symbols()):
        if index == 0 or sym["st_shndx"] == "SHN_UNDEF":
            continue
        bind = sym["st_info"]["bind"]
        if bind not in ("STB_GLOBAL", "STB_WEAK", "STB_GNU_UNIQUE"):
            continue
        if sym["st_other"]["visibility"] not in ("STV_DEFAULT", "STV_PROTECTED"):
            continue
        result.add(DynamicSymbol(sym.name, versions.get(index), sym["st_info"]["type"], bind))
    return frozenset(result)


def _symbol_versions(elf: ELFFile) -> dict[int, str]:
    versym = elf.get_section_by_name(".gnu.version")
    verdef = elf.get_section_by_name(".gnu.version_d")
    if versym is None or verdef is None:
        return {}
    names: dict[int, str] = {}
    for vd, aux_iter in verdef.iter_versions():  # type: ignore[attr-defined]
        aux = next(iter(aux_iter), None)
        if aux is not None and not vd["vd_flags"] & 0x1:  # skip VER_FLG_BASE (the SONAME)
            names[vd["vd_ndx"]] = aux.name
    result = {}
    for index, entry in enumerate(versym.iter_symbols()):  # type: ignore[attr-defined]
        ndx = entry["ndx"]
        if isinstance(ndx, int):
            ndx &= 0x7FFF  # the hidden bit
            if ndx in names:
                result[index] = names[ndx]
    return result


def read_elf(path: Path, *, with_exports: bool = True) -> ElfFacts:
    """Read the facts of one ELF file; an InputError for anything that is not a sane ELF."""
    try:
        with open_elf(path) as fh:
            elf = ELFFile(fh)
            soname = None
            needed: list[str] = []
            rpath: list[str] = []
            runpath: list[str] = []
            for section in elf.iter_sections():
                if isinstance(section, DynamicSection):
                    for tag in section.iter_tags():
                        if tag.entry.d_tag == "DT_SONAME":
                            # it becomes a file name: UTF-8, one component, <= NAME_MAX
                            soname = check_file_name(str(getattr(tag, "soname", "")),
                                                     what="SONAME", where=str(path))
                        elif tag.entry.d_tag == "DT_NEEDED":
                            needed.append(str(getattr(tag, "needed", "")))
                        elif tag.entry.d_tag == "DT_RPATH":
                            rpath.extend(str(getattr(tag, "rpath", "")).split(":"))
                        elif tag.entry.d_tag == "DT_RUNPATH":
                            runpath.extend(str(getattr(tag, "runpath", "")).split(":"))
            props = _note_properties(elf)
            build_id = gnu_build_id(elf)
            isa = props.get(GNU_PROPERTY_X86_ISA_1_NEEDED)
            return ElfFacts(
                path=path,
                elf_class=elf.elfclass,
                machine=str(elf["e_machine"]),
                elf_type=str(elf["e_type"]),
                soname=soname,
                needed=tuple(needed),
                rpath=tuple(rpath),
                runpath=tuple(runpath),
                isa_needed=int(isa) if isinstance(isa, int) else None,
                build_id=build_id,
                has_debug_info=elf.get_section_by_name(".debug_info") is not None,
                exports=_exports(elf) if with_exports else frozenset(),
            )
    except InputError:
        raise
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
    except (ELFError, ValueError, KeyError, IndexError, AttributeError, TypeError) as err:
        # pyelftools raises many kinds on corrupt input; all mean "not a sane ELF"
        raise InputError(f"{path}: not a readable ELF file ({err})") from None
    except Exception as err:  # construct.core errors and friends on truncated files
        raise InputError(f"{path}: not a readable ELF file ({type(err).__name__})") from None



def sections_of_type(elf: ELFFile, *types: str) -> Iterator[Section]:
    """The sections of these types, built from their headers alone.

    ``iter_sections()`` builds every section object, and pyelftools parses a
    hash section's whole table when it builds one (a quarter of a second for
    libLLVM's).
    """
    for index in range(elf.num_sections()):
        if elf._get_section_header(index)["sh_type"] in types:
            yield elf.get_section(index)


def gnu_build_id(elf: ELFFile) -> str | None:
    """The NT_GNU_BUILD_ID note as pyelftools decodes it: hex for a GNU note (the last
    one, if a broken file has several)."""
    build_id = None
    for section in sections_of_type(elf, "SHT_NOTE"):
        if isinstance(section, NoteSection):
            for note in section.iter_notes():
                # pyelftools gives hex only for a note named GNU; raw bytes name nothing
                if note["n_type"] == "NT_GNU_BUILD_ID" and isinstance(note["n_desc"], str):
                    build_id = note["n_desc"]
    return build_id
