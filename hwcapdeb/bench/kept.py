"""The kept-profiles file: ``bench --write-profiles`` writes it, convert reads it back."""

from __future__ import annotations

from pathlib import Path

from hwcapdeb.bench.result import DROP, UNMEASURED, BenchReport
from hwcapdeb.errors import InputError


def write_profiles(report: BenchReport, path: Path) -> None:
    """The kept variants, one profile name a line: ``hwcapdeb convert --profile`` reads them."""
    lines = [
        "# hwcapdeb bench: variants that pay on this machine "
        f"(--min-speedup {report.options.min_speedup:g}, {report.cpu})",
        *(f"# dropped {v.level}: {v.reason}" for v in report.variants
          if v.verdict in (DROP, UNMEASURED)),
        *report.kept,
    ]
    try:
        path.write_text("\n".join(lines) + "\n")
    except OSError as err:
        raise InputError(f"cannot write {path}: {err.strerror or err}") from None


def read_profiles(path: Path) -> list[str]:
    """Profile names of a ``--write-profiles`` file (comments and blank lines skipped)."""
    try:
        text = path.read_text()
    except OSError as err:
        raise InputError(f"cannot read {path}: {err.strerror or err}") from None
    lines = (ln.strip() for ln in text.splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]
