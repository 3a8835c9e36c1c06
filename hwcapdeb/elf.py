"""Facts about one ELF file, read with pyelftools.

This module owns ELF reading: SONAME, NEEDED, RPATH/RUNPATH, exported
dynamic symbols with their versions, build-id, and the x86 ISA marker.
pyelftools parses ``.note.gnu.property`` into (pr_type, pr_data) pairs but does
not decode the x86 ISA bits; :func:`decode_isa_needed` does that by hand
(GNU_PROPERTY_X86_ISA_1_NEEDED, binutils include/elf/common.h).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterator, Sequence
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
#: bit -> name, binutils include/elf/common.h GNU_PROPERTY_X86_ISA_1_*
ISA_1_BITS = {1: "x86-64-baseline", 2: "x86-64-v2", 4: "x86-64-v3", 8: "x86-64-v4"}

ELF_MAGIC = b"\x7fELF"


def is_elf(path: Path) -> bool:
    """True if ``path`` is a regular file starting with the ELF magic."""
    try:
        with _open(path) as fh:
            return fh.read(4) == ELF_MAGIC
    except (OSError, InputError):
        return False


def _open(path: Path) -> BinaryIO:
    """``path`` opened for reading if it is a regular file: a FIFO in a tree never blocks."""
    return os.fdopen(open_regular(path, what="ELF file"), "rb")


def decode_isa_needed(bits: int) -> list[str]:
    """Names of the ISA levels set in a GNU_PROPERTY_X86_ISA_1_NEEDED value."""
    names = [name for bit, name in ISA_1_BITS.items() if bits & bit]
    unknown = bits & ~sum(ISA_1_BITS)
    if unknown:
        names.append(f"unknown(0x{unknown:x})")
    return names


def isa_needed_rank(bits: int | None) -> int:
    """Highest level rank the marker demands (0 baseline .. 3 v4); -1 for no marker."""
    if not bits:
        return -1
    return max(i for i, bit in enumerate(ISA_1_BITS) if bits & bit)


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
        with _open(path) as fh:
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
            build_id = None
            for section in _sections(elf, "SHT_NOTE"):
                if isinstance(section, NoteSection):
                    for note in section.iter_notes():
                        if note["n_type"] == "NT_GNU_BUILD_ID":
                            build_id = note["n_desc"]
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


def shared_objects(root: Path) -> list[Path]:
    """Every regular (non-symlink) ELF file under ``root`` whose name contains '.so'."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if ".so" in name and not path.is_symlink() and is_elf(path):
                found.append(path)
    return sorted(found)


# --- Code facts for the instruction audit (verify area) -----------------------


@dataclass(frozen=True)
class CodeSection:
    """One executable section (SHF_EXECINSTR): its name, load address and bytes."""

    name: str
    address: int
    data: bytes


@dataclass(frozen=True, slots=True)
class FunctionSymbol:
    """A function symbol from ``.symtab`` or ``.dynsym``."""

    name: str
    start: int
    size: int
    kind: str  # STT_FUNC or STT_GNU_IFUNC
    exported: bool  # defined, global/weak, default visibility in .dynsym


@dataclass(frozen=True)
class CompileUnit:
    """DW_AT_producer of one compile unit and the address ranges its code covers."""

    producer: str
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class CodeFacts:
    """What the instruction audit needs: code, function boundaries, imports, producers."""

    path: Path
    machine: str
    elf_class: int
    build_id: str | None
    sections: tuple[CodeSection, ...]
    functions: tuple[FunctionSymbol, ...]
    #: function start addresses from .eh_frame_hdr: boundaries of stripped static functions
    unwind_starts: tuple[int, ...]
    imports: frozenset[str]  # undefined dynamic symbols
    init_array: tuple[int, ...]
    compile_units: tuple[CompileUnit, ...]

    @property
    def code_size(self) -> int:
        return sum(len(s.data) for s in self.sections)


_SHF_EXECINSTR = 0x4


def _sections(elf: ELFFile, *types: str) -> Iterator[Section]:
    """The sections of these types, built from their headers alone.

    ``iter_sections()`` builds every section object, and pyelftools parses a
    hash section's whole table when it builds one (a quarter of a second for
    libLLVM's).
    """
    for index in range(elf.num_sections()):
        if elf._get_section_header(index)["sh_type"] in types:
            yield elf.get_section(index)


def _section_named(elf: ELFFile, name: str) -> Section | None:
    """``get_section_by_name`` without building every section first (see :func:`_sections`:
    pyelftools' name map makes them all, hash tables included)."""
    for index in range(elf.num_sections()):
        if elf._get_section_name(elf._get_section_header(index)) == name:
            return elf.get_section(index)
    return None


def _code_sections(elf: ELFFile) -> list[CodeSection]:
    result = []
    for section in _sections(elf, "SHT_PROGBITS"):
        if section["sh_flags"] & _SHF_EXECINSTR:
            result.append(CodeSection(section.name, section["sh_addr"], section.data()))
    return result


_STT = {2: "STT_FUNC", 10: "STT_GNU_IFUNC"}
_EXPORTED_BINDS = (1, 2, 10)  # STB_GLOBAL, STB_WEAK, STB_GNU_UNIQUE
_EXPORTED_VISIBILITY = (0, 3)  # STV_DEFAULT, STV_PROTECTED


def _fast_symbols(elf: ELFFile, table: SymbolTableSection) -> list[tuple[str, int, int, str, bool,
                                                                          bool]] | None:
    """(name, value, size, kind, undefined, exported) of an ELF64 little-endian table.

    Elf64_Sym unpacked with struct: pyelftools parses each symbol through
    construct, about 30 us apiece, which dominates the audit of a library
    with 100k symbols.  None for other layouts (pyelftools handles those).
    """
    if elf.elfclass != 64 or not elf.little_endian or table["sh_entsize"] != 24:
        return None
    strtab = elf.get_section(table["sh_link"])
    names = strtab.data()
    data = table.data()
    result = []
    for st_name, st_info, st_other, st_shndx, st_value, st_size in struct.iter_unpack(
        "<IBBHQQ", data[: len(data) // 24 * 24]
    ):
        kind = st_info & 0xF
        undefined = st_shndx == 0
        if not undefined and (kind not in _STT or not st_value):
            continue
        end = names.find(b"\0", st_name)
        name = names[st_name: end if end >= 0 else len(names)].decode("utf-8", "replace")
        exported = (st_info >> 4) in _EXPORTED_BINDS and (st_other & 0x3) in _EXPORTED_VISIBILITY
        result.append((name, st_value, st_size, _STT.get(kind, ""), undefined, exported))
    return result


def _function_symbols(elf: ELFFile) -> tuple[list[FunctionSymbol], set[str]]:
    found: dict[tuple[str, int], FunctionSymbol] = {}
    imports: set[str] = set()
    for table_name in (".dynsym", ".symtab"):
        table = _section_named(elf, table_name)
        if not isinstance(table, SymbolTableSection):
            continue
        fast = _fast_symbols(elf, table)
        if fast is not None:
            for name, value, size, kind, undefined, exported in fast:
                if undefined:
                    if table_name == ".dynsym" and name:
                        imports.add(name)
                    continue
                exported = exported and table_name == ".dynsym"
                old = found.get((name, value))
                if old is None or (exported and not old.exported):
                    found[(name, value)] = FunctionSymbol(name, value, size, kind, exported)
            continue
        for sym in table.iter_symbols():
            kind = sym["st_info"]["type"]
            if kind == "STT_LOOS":  # pyelftools' name for type 10, STT_GNU_IFUNC
                kind = "STT_GNU_IFUNC"
            if sym["st_shndx"] == "SHN_UNDEF":
                if table_name == ".dynsym" and sym.name:
                    imports.add(sym.name)
                continue
            if kind not in ("STT_FUNC", "STT_GNU_IFUNC") or not sym["st_value"]:
                continue
            exported = (
                table_name == ".dynsym"
                and sym["st_info"]["bind"] in ("STB_GLOBAL", "STB_WEAK", "STB_GNU_UNIQUE")
                and sym["st_other"]["visibility"] in ("STV_DEFAULT", "STV_PROTECTED")
            )
            key = (sym.name, sym["st_value"])
            old = found.get(key)
            if old is None or (exported and not old.exported):
                found[key] = FunctionSymbol(
                    sym.name, sym["st_value"], sym["st_size"], kind, exported
                )
    return sorted(found.values(), key=lambda f: (f.start, f.name)), imports


# DWARF pointer encodings used by .eh_frame_hdr (LSB gABI, "Exception Frame Header")
_DW_EH_PE_SIZES = {
    0x02: ("<H", 2), 0x03: ("<I", 4), 0x04: ("<Q", 8),
    0x0A: ("<h", 2), 0x0B: ("<i", 4), 0x0C: ("<q", 8),
}


def _unwind_starts(elf: ELFFile) -> list[int]:
    """Function start addresses from the sorted table of ``.eh_frame_hdr``.

    Decoded by hand: pyelftools parses .eh_frame FDE by FDE (slow on libraries
    with 100k functions) and does not read the header's binary-search table,
    which lists every FDE's initial location already sorted.
    """
    hdr = _section_named(elf, ".eh_frame_hdr")
    if hdr is None:
        return []
    data = hdr.data()
    if len(data) < 4 or data[0] != 1:
        return []
    ptr_enc, count_enc, table_enc = data[1], data[2], data[3]
    pos = 4
    ptr_fmt = _DW_EH_PE_SIZES.get(ptr_enc & 0x0F)
    count_fmt = _DW_EH_PE_SIZES.get(count_enc & 0x0F)
    entry_fmt = _DW_EH_PE_SIZES.get(table_enc & 0x0F)
    # only datarel (0x30) table entries are defined for the search table
    if ptr_fmt is None or count_fmt is None or entry_fmt is None or table_enc & 0x70 != 0x30:
        return []
    pos += ptr_fmt[1]
    if len(data) < pos + count_fmt[1]:
        return []
    (count,) = struct.unpack_from(count_fmt[0], data, pos)
    pos += count_fmt[1]
    size = entry_fmt[1]
    count = min(count, (len(data) - pos) // (2 * size))
    base = hdr["sh_addr"]
    values = struct.unpack_from(f"<{2 * count}{entry_fmt[0][1]}", data, pos)
    return sorted({base + values[i] for i in range(0, 2 * count, 2)})


def _init_array(elf: ELFFile) -> list[int]:
    result: list[int] = []
    for name in (".init_array", ".preinit_array"):
        section = _section_named(elf, name)
        if section is None or section["sh_type"] == "SHT_NOBITS":
            continue
        data = section.data()
        width = 8 if elf.elfclass == 64 else 4
        fmt = "<Q" if width == 8 else "<I"
        result.extend(v for (v,) in struct.iter_unpack(fmt, data[: len(data) // width * width]))
    return [v for v in result if v not in (0, 2**64 - 1, 2**32 - 1)]


def _compile_units(elf: ELFFile) -> list[CompileUnit]:
    """DW_AT_producer (gcc records its flags there, -grecord-gcc-switches) per CU."""
    if _section_named(elf, ".debug_info") is None:
        return []
    dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
    by_offset: dict[int, list[tuple[int, int]]] = {}
    aranges = dwarf.get_aranges()
    if aranges is not None:
        for entry in aranges.entries:
            by_offset.setdefault(entry.info_offset, []).append(
                (entry.begin_addr, entry.begin_addr + entry.length)
            )
    units = []
    for cu in dwarf.iter_CUs():
        top = cu.get_top_DIE()
        attr = top.attributes.get("DW_AT_producer")
        if attr is None:
            continue
        value = attr.value
        producer = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        ranges = by_offset.get(cu.cu_offset, [])
        if not ranges and "DW_AT_low_pc" in top.attributes and "DW_AT_high_pc" in top.attributes:
            low = int(top.attributes["DW_AT_low_pc"].value)
            high = top.attributes["DW_AT_high_pc"]
            end = low + int(high.value) if high.form != "DW_FORM_addr" else int(high.value)
            ranges = [(low, end)]
        units.append(CompileUnit(producer, tuple(ranges)))
    return units


def read_code(path: Path, *, debug_file: Path | None = None,
              on_code: Callable[[Sequence[CodeSection], Sequence[int], int], object] | None = None
              ) -> CodeFacts:
    """Executable sections, function symbols, unwind boundaries and DWARF producers.

    ``debug_file`` is a separate debug file (``/usr/lib/debug/.build-id/...``) whose
    ``.symtab`` and DWARF complete a stripped object.  ``on_code(sections,
    unwind_starts, elf_class)`` is called as soon as those are read, before the
    symbols and DWARF (the slow part): the audit starts decoding meanwhile.
    InputError on corrupt input.
    """
    try:
        with _open(path) as fh:
            elf = ELFFile(fh)
            sections = _code_sections(elf)
            starts = _unwind_starts(elf)
            if on_code is not None:
                on_code(sections, starts, elf.elfclass)
            functions, imports = _function_symbols(elf)
            init = _init_array(elf)
            units = _compile_units(elf)
            build_id = None
            for section in _sections(elf, "SHT_NOTE"):
                if isinstance(section, NoteSection):
                    for note in section.iter_notes():
                        if note["n_type"] == "NT_GNU_BUILD_ID":
                            build_id = str(note["n_desc"])
            machine, elf_class = str(elf["e_machine"]), elf.elfclass
    except InputError:
        raise
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
    except Exception as err:  # pyelftools raises many kinds on corrupt input
        text = " ".join(str(err).split())[:200]
        kind = type(err).__name__
        raise InputError(f"{path}: not a readable ELF file ({kind}: {text})") from None
    if debug_file is not None:
        try:
            with _open(debug_file) as fh:
                delf = ELFFile(fh)
                extra, _ = _function_symbols(delf)
                known = {(f.name, f.start) for f in functions}
                functions = sorted(
                    [*functions, *(f for f in extra if (f.name, f.start) not in known)],
                    key=lambda f: (f.start, f.name),
                )
                units = units or _compile_units(delf)
        except Exception:  # a broken debug file only loses evidence, never the audit
            pass
    return CodeFacts(
        path=path,
        machine=machine,
        elf_class=elf_class,
        build_id=build_id,
        sections=tuple(sections),
        functions=tuple(functions),
        unwind_starts=tuple(starts),
        imports=frozenset(imports),
        init_array=tuple(init),
        compile_units=tuple(units),
    )


def debug_file_for(build_id: str | None, roots: Sequence[Path]) -> Path | None:
    """The separate debug file ``usr/lib/debug/.build-id/xx/yyyy.debug`` under any root."""
    if not build_id or len(build_id) < 3:
        return None
    for root in roots:
        candidate = root / "usr/lib/debug/.build-id" / build_id[:2] / f"{build_id[2:]}.debug"
        if candidate.is_file():
            return candidate
    return None
