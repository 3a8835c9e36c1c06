"""Proof of the loaded file: which files ``LD_DEBUG=libs`` says the loader mapped."""

from __future__ import annotations

import os
import re
from pathlib import Path

_INIT = re.compile(r"^\s*\d+:\s+calling init: (.+?)\s*$")
_TRYING = re.compile(r"^\s*\d+:\s+trying file=(.+?)\s*$")
_FIND = re.compile(r"^\s*\d+:\s+find library=")


def loaded_files(debug_log: str) -> list[Path]:
    """Files the loader mapped, from LD_DEBUG=libs output, in the order it reports them.

    ``calling init: FILE`` names every object initialised; the last ``trying
    file=`` of a ``find library=`` block is the one it found (kept as a
    fallback for objects that die before their initialiser runs).
    """
    seen: dict[str, None] = {}  # a dict keeps the first-seen order without duplicates
    last_try: str | None = None
    for line in debug_log.splitlines():
        if _FIND.match(line):
            if last_try:
                seen.setdefault(last_try)
            last_try = None
        elif m := _TRYING.match(line):
            last_try = m.group(1)
        elif m := _INIT.match(line):
            if last_try:
                seen.setdefault(last_try)
                last_try = None
            seen.setdefault(m.group(1))
    if last_try:
        seen.setdefault(last_try)
    return [Path(p) for p in seen]


def same_file(a: Path, b: Path) -> bool:
    """``a`` and ``b`` are one file (a link and its target count as the same)."""
    try:
        return a.resolve() == b.resolve() or os.path.samefile(a, b)
    except OSError:
        return False
