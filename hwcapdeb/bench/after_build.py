"""After a build: verify and bench it as the per-package options file says, save the JSON.

The per-package options file (deb822, the one ``sbuild-config
--package-options`` reads) may give a package a benchmark::

    Source: xxhash
    Bench-Command: xxhsum -b5 -i1
    Bench-Options: --metric score --score "([0-9.]+) MB/s" --higher-is-better

``Bench-Command`` is the COMMAND of ``hwcapdeb bench`` (shell words: a program
of the package or on PATH and its arguments); ``Bench-Options`` are that
command's options (``-n``, ``--metric``, ``--score REGEX``,
``--higher-is-better``, ``--min-speedup``...), checked by ``hwcapdeb bench``
itself.  :func:`write_results` saves, beside ``SRC_VERSION_ARCH.changes``,
``SRC_VERSION_ARCH.verify.json`` and, when the package has a bench command,
``SRC_VERSION_ARCH.bench.json``: what ``hwcapdeb report`` merges.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from hwcapdeb.errors import InputError
from hwcapdeb.sbuild.hooks import package_stanza
from hwcapdeb.sbuild.rc import hwcapdeb_command


@dataclass(frozen=True)
class BenchSetting:
    """A package's benchmark: hwcapdeb bench's options and COMMAND."""

    command: tuple[str, ...]
    options: tuple[str, ...] = ()


def bench_setting(package_options: Path, source: str) -> BenchSetting | None:
    """The ``Bench-Command``/``Bench-Options`` of ``source`` (None: it has none)."""
    stanza = package_stanza(package_options, source)
    if stanza is None or not stanza.get("Bench-Command", "").strip():
        return None
    try:
        command = tuple(shlex.split(stanza["Bench-Command"]))
        options = tuple(shlex.split(stanza.get("Bench-Options", "")))
    except ValueError as err:
        raise InputError(f"{package_options}: Source {source}: Bench-Command or Bench-Options "
                         f"is not valid shell words ({err})",
                         hint="quote as in a shell: --score '([0-9.]+) MB/s'") from None
    return BenchSetting(command, options)


def _run_json(argv: list[str], out: Path, timeout: float) -> str:
    """Run a hwcapdeb --json command; save its document (or its error) to ``out``."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        stdout, stderr, status = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired:
        stdout, stderr, status = "", f"timed out after {timeout:.0f} s", -1
    try:
        document = json.loads(stdout)
    except ValueError:
        lines = [line for line in stderr.splitlines() if line.strip()]
        error = lines[-1] if lines else f"exit status {status}"
        document = {"error": error, "command": argv[argv.index("--") + 1:] if "--" in argv
                    else []}
        out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        return f"{out.name}: failed: {error}"
    out.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return f"{out.name}: written"


def write_results(changes: Path, package_options: Path | None, *,
                  timeout: float = 3600) -> list[str]:
    """Save verify's and (if the package has a bench command) bench's JSON beside ``changes``.

    Returns one line per file written, for the log.  A package without a bench
    command gets no bench file: the report says so.
    """
    if not changes.name.endswith(".changes") or not changes.is_file():
        raise InputError(f"{changes}: not a .changes file", hint="give the build's .changes")
    stem = changes.with_name(changes.name[: -len(".changes")])
    source = stem.name.split("_", 1)[0]
    tool = hwcapdeb_command()
    lines = [_run_json([*tool, "verify", "--json", str(changes)],
                       stem.with_name(stem.name + ".verify.json"), timeout)]
    setting = bench_setting(package_options, source) if package_options else None
    if setting is None:
        lines.append(f"{source}: no Bench-Command in the package options: not benchmarked")
        return lines
    argv = [*tool, "bench", str(changes), *setting.options, "--json", "--", *setting.command]
    lines.append(_run_json(argv, stem.with_name(stem.name + ".bench.json"), timeout))
    return lines
