"""Compile small real shared libraries with gcc for the tests.

The tests never fake ELF files: they compile them, lay them out like a
Debian package would, and ask the real loader.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

#: A library whose hot loop gcc vectorizes at -O3 (wider with each level).
KERNEL_C = r"""
#include <stddef.h>
const char *hw_variant(void) { return HW_VARIANT; }
float hw_dot(const float *a, const float *b, size_t n) {
    float s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
void hw_saxpy(float *y, const float *x, float a, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}
"""

LEVEL_FLAGS = {
    "baseline": ["-march=x86-64"],
    "x86-64-v2": ["-march=x86-64-v2", "-mneeded"],
    "x86-64-v3": ["-march=x86-64-v3", "-mneeded"],
    "x86-64-v4": ["-march=x86-64-v4", "-mneeded"],
}


def compile_library(
    out: Path,
    *,
    soname: str = "libhwtest.so.1",
    variant: str = "baseline",
    cflags: Sequence[str] | None = None,
    source: str = KERNEL_C,
    extra_source: str = "",
) -> Path:
    """Compile ``source`` into the shared library ``out`` (SONAME ``soname``)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    src = out.with_suffix(out.suffix + ".c")
    src.write_text(source + extra_source)
    flags = list(cflags) if cflags is not None else LEVEL_FLAGS[variant]
    subprocess.run(
        ["gcc", "-O3", "-fPIC", "-shared", *flags, f'-DHW_VARIANT="{variant}"',
         f"-Wl,-soname,{soname}", "-o", str(out), str(src)],
        check=True,
    )
    src.unlink()
    return out


def install_variant_tree(
    libdir: Path,
    *,
    soname: str = "libhwtest.so.1",
    realname: str = "libhwtest.so.1.0.0",
    levels: Sequence[str] = ("x86-64-v2", "x86-64-v3", "x86-64-v4"),
    soname_links: bool = True,
    flags_for: dict[str, Sequence[str]] | None = None,
) -> dict[str, Path]:
    """Lay out baseline + glibc-hwcaps variants as a package installs them.

    Returns level name -> path of the real file.  ``flags_for`` overrides a
    level's compiler flags (to build broken trees on purpose).
    """
    flags_for = flags_for or {}
    files = {}
    for level in ("baseline", *levels):
        directory = libdir if level == "baseline" else libdir / "glibc-hwcaps" / level
        real = compile_library(
            directory / realname, soname=soname, variant=level, cflags=flags_for.get(level)
        )
        if soname_links or level == "baseline":
            link = directory / soname
            if link.is_symlink() or link.exists():
                link.unlink()
            os.symlink(realname, link)
        files[level] = real
    return files
