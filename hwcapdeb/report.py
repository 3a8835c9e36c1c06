"""What pays, across many builds: merge verify and bench results and build logs.

A build's results are files named after its ``.changes`` (``SRC_VERSION_ARCH``),
in one directory or many (searched recursively):

- ``SRC_VERSION_ARCH.changes``: the build succeeded;
- ``SRC_VERSION_ARCH.build`` (sbuild may add ``-TIMESTAMP``): the build log,
  the only file a failed build leaves; its ``Fail-Stage:`` or last error line
  says why;
- ``SRC_VERSION_ARCH.verify.json``: ``hwcapdeb verify --json`` of the build
  (``hwcapdeb build --bench`` and the sbuild snippet's bench hook write it);
- ``SRC_VERSION_ARCH.bench.json``: ``hwcapdeb bench --json`` with the
  package's ``Bench-Command`` (none: the package has no bench command).

:func:`collect` turns them into one :class:`PackageRow` per build; a missing
or unreadable piece is a row that says so, never an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hwcapdeb.errors import InputError

#: bumped when the --json document changes incompatibly
REPORT_JSON_VERSION = 1

_SUFFIXES = (".verify.json", ".bench.json", ".changes", ".build")
_TIMESTAMP = re.compile(r"-\d{8}-\d{4}$")  # sbuild's SRC_VERSION_ARCH-20240101-1200.build
_ERROR_LINE = re.compile(r"\b(error|failed)\b", re.IGNORECASE)
#: a compiler's or make's own error line: the cause, before the tools that report it
_COMPILER_ERROR = re.compile(r"^\S+:\d+(:\d+)?: (fatal )?error: |^make(\[\d+\])?: \*\*\* ")


@dataclass
class LevelRow:
    """One level of one package: what it costs and what it buys."""

    level: str
    added_bytes: int | None = None
    speedup: float | None = None
    interval: tuple[float, float] | None = None
    verdict: str | None = None  # bench's keep / drop / unmeasured
    reason: str | None = None


@dataclass
class PackageRow:
    """One build: its outcome, verify's findings, bench's verdicts."""

    name: str  # SRC_VERSION_ARCH
    source: str
    version: str
    status: str = "built"  # built | failed
    detail: str = ""  # why the build failed
    libraries: list[str] = field(default_factory=list)
    errors: int | None = None  # None: not verified
    verify_note: str = ""  # why the verify results could not be read
    warnings: int | None = None
    findings: list[str] = field(default_factory=list)
    bench_command: list[str] | None = None  # None: no bench results
    bench_note: str = ""
    levels: list[LevelRow] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        if self.status == "failed":
            return f"build failed: {self.detail}" if self.detail else "build failed"
        if self.verify_note:
            return f"not verified: {self.verify_note}"
        if self.errors:
            return "fix verify errors first"
        if self.bench_command is None:
            note = self.bench_note or "no bench command"
            return "not measured: " + ("bench failed" if note.startswith("bench failed") else note)
        if not self.kept:
            return "no variant pays: revert"
        if self.dropped:
            return "keep " + ",".join(self.kept) + ", drop " + ",".join(self.dropped)
        return "keep " + ",".join(self.kept)

    @property
    def convert_drop(self) -> str:
        """The ``hwcapdeb convert`` options the verdict asks for ('' when none)."""
        if self.status == "failed" or self.verify_note or self.errors or \
                self.bench_command is None:
            return ""
        if not self.kept:
            return "hwcapdeb revert"
        return " ".join(f"--drop {level}" for level in self.dropped)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict
        data["convert_drop"] = self.convert_drop
        return data


def _stem(path: Path) -> tuple[str, str] | None:
    """(SRC_VERSION_ARCH, kind) of a result file, or None for other files."""
    for suffix in _SUFFIXES:
        if path.name.endswith(suffix):
            stem = path.name[: -len(suffix)]
            if suffix == ".build":
                stem = _TIMESTAMP.sub("", stem)
            if stem.count("_") >= 1:
                return stem, suffix
    return None


def result_files(paths: list[Path]) -> dict[str, dict[str, Path]]:
    """DIR/SRC_VERSION_ARCH -> {kind: file}, from files and (recursively) directories."""
    found: dict[str, dict[str, Path]] = {}
    for path in paths:
        if path.is_dir():
            candidates = sorted(p for p in path.rglob("*") if p.is_file())
        elif path.is_file():
            candidates = [path]
        else:
            raise InputError(f"{path}: no such file or directory",
                             hint="give build output directories or result files")
        for file in candidates:
            key = _stem(file)
            if key is None:
                continue
            stem, kind = key
            # one build per directory and name: two builds of one version stay two rows
            slot = found.setdefault(str(file.parent / stem), {})
            # sbuild writes SRC_VERSION_ARCH-TIMESTAMP.build and a link without it: one log
            if kind not in slot or (file.is_symlink() and not slot[kind].is_symlink()):
                slot[kind] = file
    return found


def _failure(log: Path | None) -> str:
    """Why a build failed, from its log: sbuild's Fail-Stage, else its last error line."""
    if log is None:
        return "no .changes and no build log"
    try:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as err:
        return f"unreadable build log {log.name} ({err.strerror})"
    first_error = next((" ".join(line.split())[:160] for line in lines
                        if _COMPILER_ERROR.search(line)), None)
    for line in reversed(lines):
        if line.startswith("Fail-Stage:"):
            stage = line.split(":", 1)[1].strip()
            if stage == "run-post-build-commands":
                return "verify found errors (post-build hook)"
            return f"sbuild stage {stage}" + (f": {first_error}" if first_error else "")
    if first_error:
        return first_error
    for line in reversed(lines):
        if _ERROR_LINE.search(line):
            return " ".join(line.split())[:160]
    return f"no .changes (see {log.name})"


def _sbuild_failed(log: Path | None) -> bool:
    """sbuild's summary says the run failed (e.g. verify's post-build hook, after the .changes)."""
    if log is None:
        return False
    try:
        tail = log.read_bytes()[-8192:].decode("utf-8", "replace").splitlines()
    except OSError:
        return False
    return any(line.startswith("Fail-Stage:") for line in tail)


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _add_verify(row: PackageRow, data: dict[str, Any]) -> None:
    findings = [f for f in data.get("findings", []) if isinstance(f, dict)]
    severity = [str(f.get("severity", "")).lower()[:1] for f in findings]
    row.errors = severity.count("e")
    row.warnings = severity.count("w")
    row.findings = [f"{str(f.get('severity', '?'))[:1].upper()}: {f.get('tag')} {f.get('path')}"
                    for f in findings]
    row.libraries = sorted({str(lib.get("soname")) for lib in data.get("libraries", [])
                            if isinstance(lib, dict)})
    added: dict[str, int] = {}
    for size in data.get("sizes", []):
        if isinstance(size, dict) and size.get("level") != "baseline":
            level = str(size.get("level"))
            added[level] = added.get(level, 0) + int(size.get("bytes") or 0)
    for level, size in sorted(added.items()):
        _level(row, level).added_bytes = size


def _level(row: PackageRow, name: str) -> LevelRow:
    for level in row.levels:
        if level.level == name:
            return level
    level = LevelRow(name)
    row.levels.append(level)
    row.levels.sort(key=lambda lv: lv.level)
    return level


def _add_bench(row: PackageRow, data: dict[str, Any]) -> None:
    row.bench_command = [str(a) for a in data.get("command", [])]
    for variant in data.get("variants", []):
        if not isinstance(variant, dict) or variant.get("level") == "baseline":
            continue
        level = _level(row, str(variant.get("level")))
        level.speedup = variant.get("speedup")
        interval = variant.get("interval")
        level.interval = (float(interval[0]), float(interval[1])) if interval else None
        level.verdict = variant.get("verdict")
        level.reason = variant.get("reason")
        if level.added_bytes is None:
            level.added_bytes = variant.get("added_bytes")
    row.kept = [str(k) for k in data.get("kept", [])]
    row.dropped = [lv.level for lv in row.levels if lv.verdict is not None
                   and lv.level not in row.kept]


def collect(paths: list[Path]) -> list[PackageRow]:
    """One row per build found under ``paths``, sorted by name; InputError if none."""
    rows = []
    for key, files in sorted(result_files(paths).items(), key=lambda kv: Path(kv[0]).name):
        stem = Path(key).name
        source, _, rest = stem.partition("_")
        version = rest.rsplit("_", 1)[0] if "_" in rest else rest
        row = PackageRow(stem, source, version, files=sorted(str(p) for p in files.values()))
        if ".changes" not in files or _sbuild_failed(files.get(".build")):
            row.status, row.detail = "failed", _failure(files.get(".build"))
        if ".verify.json" in files:
            verify = _load(files[".verify.json"])
            if verify is None:
                row.verify_note = f"unreadable {files['.verify.json'].name}"
            else:
                _add_verify(row, verify)
        if ".bench.json" in files:
            bench = _load(files[".bench.json"])
            if bench is not None and "error" in bench:
                row.bench_note = f"bench failed: {bench['error']}"
            elif bench is None or "variants" not in bench:
                row.bench_note = f"unreadable bench results ({files['.bench.json'].name})"
            else:
                _add_bench(row, bench)
        rows.append(row)
    if not rows:
        raise InputError(
            "no build results (.changes, .build, .verify.json, .bench.json) under "
            + ", ".join(str(p) for p in paths),
            hint="point at the --out directories of 'hwcapdeb build' or sbuild's build directory",
        )
    return rows


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} B"


def _speed(level: LevelRow) -> str:
    if level.speedup is None:
        return f"{level.level}: {level.verdict or '-'}"
    interval = f" [{level.interval[0]:.2f}, {level.interval[1]:.2f}]" if level.interval else ""
    return f"{level.level}: {level.speedup:.2f}x{interval} {level.verdict}"


def markdown(rows: list[PackageRow]) -> str:
    """The table, for a README or a mailing-list post."""
    header = ["package", "version", "libraries", "bytes added", "verify", "speedup (interval)",
              "verdict", "convert"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if row.verify_note:
            verify = row.verify_note
        elif row.errors is None:
            verify = "not verified" if row.status != "failed" else "-"
        else:
            verify = f"{row.errors} E, {row.warnings} W"
        if row.bench_command is None:
            speed = "-" if row.status == "failed" else (row.bench_note or "no bench command")
        else:
            speed = "<br>".join(_speed(lv) for lv in row.levels if lv.verdict is not None)
        added = "<br>".join(f"{lv.level}: {_size(lv.added_bytes)}" for lv in row.levels
                            if lv.added_bytes is not None) or "-"
        cells = [row.source, row.version, ", ".join(row.libraries) or "-", added, verify,
                 speed, row.verdict, f"`{row.convert_drop}`" if row.convert_drop else "-"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def to_json(rows: list[PackageRow]) -> dict[str, Any]:
    return {"report_version": REPORT_JSON_VERSION, "packages": [r.to_json() for r in rows]}
