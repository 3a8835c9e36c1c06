"""COMMAND as something ``ld.so`` can run: a dynamic ELF program, or a script's interpreter."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hwcapdeb.debfile import PackageTree
from hwcapdeb.elf import is_elf, read_elf
from hwcapdeb.errors import InputError, UsageError


@dataclass(frozen=True)
class Program:
    """How COMMAND is started through the loader."""

    argv: tuple[str, ...]  # what follows the loader's options
    executable: Path  # the ELF file the loader runs
    origin: str  # "package NAME", "PATH" or "cwd"
    note: str | None = None  # e.g. how a script was handled


def _shebang(path: Path) -> list[str] | None:
    try:
        with path.open("rb") as fh:
            head = fh.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    line = head[2:].split(b"\n", 1)[0].decode("utf-8", "replace").strip()
    return line.split(None, 1) if line else None


def _locate(name: str, trees: Sequence[PackageTree]) -> tuple[Path, str]:
    """COMMAND's program: a path (inside the packages first, then from cwd) or a name."""
    if "/" in name:
        path = Path(name)
        if not path.is_absolute() and not name.startswith(("./", "../")):
            for tree in trees:  # usr/bin/NAME means the package's own program
                candidate = tree.root / path
                if candidate.exists():
                    return candidate, f"package {tree.name}"
        if path.exists():
            return path.resolve(), "given path"
        raise UsageError(
            f"{name}: no such program",
            hint="give a path, a name on PATH, or a path inside the package (usr/bin/...)",
        )
    for tree in trees:  # the package's own program wins: it is what is benchmarked
        for rel in ("usr/bin", "bin", "usr/sbin", "sbin", "usr/games"):
            candidate = tree.root / rel / name
            if candidate.is_file():
                return candidate, f"package {tree.name}"
    found = shutil.which(name)
    if found is None:
        raise UsageError(f"{name}: not found in the packages or on PATH")
    return Path(found), "PATH"


def _dynamic_elf(path: Path, what: str) -> None:
    try:
        facts = read_elf(path, with_exports=False)
    except InputError as err:
        raise UsageError(f"{what} {path} is not a readable ELF program ({err})") from None
    if facts.elf_type not in ("ET_EXEC", "ET_DYN") or (facts.soname and not facts.needed):
        raise UsageError(f"{what} {path} is not an executable program")
    if not facts.needed:
        raise UsageError(
            f"{what} {path} is statically linked: it loads no shared library, "
            "so no variant can change it",
            hint="benchmark a program that links the package's libraries dynamically",
        )


def resolve_program(command: Sequence[str], trees: Sequence[PackageTree]) -> Program:
    """Turn COMMAND into something ``ld.so`` can run: it needs a dynamic ELF executable.

    A script is run as ``ld.so INTERPRETER [ARG] SCRIPT ARGS`` (``#!/usr/bin/env
    NAME`` looks NAME up on PATH): the interpreter and what it loads get the
    variant; programs the script starts do not (they are exec'ed normally).
    """
    if not command:
        raise UsageError("no COMMAND given", hint="usage: hwcapdeb bench PATH -- COMMAND [ARGS...]")
    path, origin = _locate(command[0], trees)
    if not os.access(path, os.X_OK) or path.is_dir():
        raise UsageError(f"{path} is not an executable file")
    if is_elf(path):
        _dynamic_elf(path, "COMMAND")
        return Program((str(path), *command[1:]), path, origin)
    shebang = _shebang(path)
    if shebang is None:
        raise UsageError(
            f"{path} is neither an ELF program nor a #! script",
            hint="the loader can only run ELF executables",
        )
    interp, *rest = shebang
    args = rest[0].split() if rest else []
    if Path(interp).name == "env" and args:
        flags = [a for a in args if a.startswith("-")]
        if flags:
            raise UsageError(
                f"{path}: '#!{' '.join(shebang)}' passes options to env",
                hint=f"run the interpreter yourself: -- INTERPRETER {path} ...",
            )
        found = shutil.which(args[0])
        if found is None:
            raise UsageError(f"{path}: its interpreter {args[0]} is not on PATH")
        interp, args = found, args[1:]
    interp_path = Path(interp)
    if not interp_path.is_file() or not is_elf(interp_path):
        raise UsageError(
            f"{path}: its interpreter {interp} is not an ELF program",
            hint="run the real interpreter yourself: -- INTERPRETER SCRIPT ...",
        )
    _dynamic_elf(interp_path, "interpreter")
    note = (
        f"{path.name} is a script: its interpreter {interp_path} runs through the loader; "
        "programs the script starts do not get the variant"
    )
    return Program((str(interp_path), *args, str(path), *command[1:]), interp_path, origin, note)
