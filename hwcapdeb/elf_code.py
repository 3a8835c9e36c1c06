"""Code of one ELF file for the instruction audit (:mod:`hwcapdeb.isa_audit`).

The audit needs what :mod:`hwcapdeb.elf` does not read: the bytes of every
executable section, function boundaries (symbols, ``.eh_frame_hdr``, init
arrays), the imported symbols, and the DWARF producers gcc records its flags in;
a separate debug file (``/usr/lib/debug/.build-id``) completes a stripped object.
"""

from __future__ import annotations

import os
import re
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from elftools.elf.elffile import ELFFile
from elftools.elf.sections import Section, SymbolTableSection

from hwcapdeb.elf import gnu_build_id, is_elf, open_elf, sections_of_type
from hwcapdeb.errors import InputError


def shared_objects(root: Path) -> list[Path]:
    """Every regular (non-symlink) ELF file under ``root`` whose name contains '.so'."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if ".so" in name and not path.is_symlink() and is_elf(path):
                found.append(path)
    return sorted(found)


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


def _section_named(elf: ELFFile, name: str) -> Section | None:
    """``get_section_by_name`` without building every section first (see
    :func:`~hwcapdeb.elf.sections_of_type`: pyelftools' name map makes them all, hash
    tables included)."""
    for index in range(elf.num_sections()):
        if elf._get_section_name(elf._get_section_header(index)) == name:
            return elf.get_section(index)
    return None


def _code_sections(elf: ELFFile) -> list[CodeSection]:
    result = []
    for section in sections_of_type(elf, "SHT_PROGBITS"):
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
        with open_elf(path) as fh:
            elf = ELFFile(fh)
            sections = _code_sections(elf)
            starts = _unwind_starts(elf)
            if on_code is not None:
                on_code(sections, starts, elf.elfclass)
            functions, imports = _function_symbols(elf)
            init = _init_array(elf)
            units = _compile_units(elf)
            build_id = gnu_build_id(elf)
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
            with open_elf(debug_file) as fh:
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


#: hex digits of a GNU build-id: 20 bytes (SHA-1, ld's default) or another hash size
_BUILD_ID = re.compile(r"[0-9a-f]{4,128}")


def debug_file_for(build_id: str | None, roots: Sequence[Path]) -> Path | None:
    """The separate debug file ``usr/lib/debug/.build-id/xx/yyyy.debug`` under any root."""
    # a build-id is a hash in hex; anything else (a corrupt note) names no debug file
    # and may not even be a valid file name
    if not build_id or not _BUILD_ID.fullmatch(build_id):
        return None
    for root in roots:
        candidate = root / "usr/lib/debug/.build-id" / build_id[:2] / f"{build_id[2:]}.debug"
        if candidate.is_file():
            return candidate
    return None
