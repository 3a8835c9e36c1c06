"""What the loader does with a file it picked, part of the loader model
(:mod:`hwcapdeb.loader`): glibc 2.36's open_path() on open(2) errors and
_dl_map_object_from_fd()'s checks of the program headers (elf/dl-load.c).
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path

from hwcapdeb.profiles import architectures


def open_like_loader(path: Path) -> str:
    """What open(2) with O_RDONLY says, as open_path() sees it: "ok", "directory",
    "fifo" (the loader's blocking open() waits for a writer: it hangs), "denied"
    (EACCES: skipped), "absent" (ENOENT, ENOTDIR... : the search goes on)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except PermissionError:
        return "denied"
    except OSError as err:
        return "denied" if err.errno == errno.EACCES else "absent"
    try:
        mode = os.fstat(fd).st_mode
        return "directory" if stat.S_ISDIR(mode) else "fifo" if stat.S_ISFIFO(mode) else "ok"
    finally:
        os.close(fd)


#: PT_LOAD, PT_DYNAMIC; DT_FLAGS_1 and its DF_1_PIE bit.  Each architecture's byte
#: order and page size are its ``elf`` data (profiles/arch: 64 KiB on ppc64el, whose
#: 64 KiB kernels accept the 64 KiB-aligned objects Debian's toolchain produces)
_PT_LOAD, _PT_DYNAMIC, _DT_FLAGS_1, _DF_1_PIE = 1, 2, 0x6FFFFFFB, 0x08000000


def mapping_problem(path: Path, arch: str) -> str | None:
    """_dl_map_object_from_fd()'s checks after open_verify() (elf/dl-load.c, glibc 2.36),
    in its order: a PT_LOAD whose p_vaddr - p_offset is not page-aligned, no PT_LOAD, no
    (or an empty) PT_DYNAMIC, then DF_1_PIE.  All fatal: the file was already picked."""
    identity = architectures()[arch].elf if arch in architectures() else None
    if identity is None:
        return None
    order = "<" if identity.little_endian else ">"
    try:
        with path.open("rb") as fh:
            header = fh.read(64)
            if len(header) < 64:
                return None
            (e_phoff,) = struct.unpack_from(order + "Q", header, 32)
            (e_phnum,) = struct.unpack_from(order + "H", header, 56)
            fh.seek(e_phoff)
            table = fh.read(56 * min(e_phnum, 4096))
            if len(table) < 56 * e_phnum:
                return "cannot read file data"
            loads, dynamic, empty_dynamic = 0, None, False
            page = identity.page_size
            for i in range(e_phnum):
                p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz, _memsz, _align = (
                    struct.unpack_from(order + "IIQQQQQQ", table, 56 * i))
                if p_type == _PT_DYNAMIC:
                    if p_filesz == 0:
                        empty_dynamic = True
                    else:
                        dynamic = (p_offset, p_filesz)
                elif p_type == _PT_LOAD:
                    if (p_vaddr - p_offset) & (page - 1):
                        return "ELF load command address/offset not page-aligned"
                    loads += 1
            if loads == 0:
                return "object file has no loadable segments"
            if dynamic is None or empty_dynamic:
                return "object file has no dynamic section"
            fh.seek(dynamic[0])
            raw = fh.read(min(dynamic[1], 1 << 20))
    except (OSError, struct.error, ValueError, OverflowError):
        return None  # the readers above have their own say on unreadable files
    for offset in range(0, len(raw) - 15, 16):
        tag, val = struct.unpack_from(order + "qQ", raw, offset)
        if tag == 0:
            break
        if tag == _DT_FLAGS_1 and val & _DF_1_PIE:
            return "cannot dynamically load position-independent executable"
    return None
