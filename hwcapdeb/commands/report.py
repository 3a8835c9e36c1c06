"""``hwcapdeb report``: one table of what pays, from the results of many builds."""

from __future__ import annotations

from pathlib import Path

import click

from hwcapdeb.output import emit_json
from hwcapdeb.report import collect, markdown, to_json


@click.command("report")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["markdown", "json"]), default="markdown",
              show_default=True, help="A Markdown table or a JSON document.")
def command(paths: tuple[Path, ...], fmt: str) -> None:
    """Merge the results of many builds into one table, one row per build.

    PATHS are build output directories (searched recursively) or result files:
    SRC_VERSION_ARCH.changes, .build (the log; all a failed build leaves),
    .verify.json (hwcapdeb verify --json) and .bench.json (hwcapdeb bench
    --json), as 'hwcapdeb build --bench' and the sbuild snippet write them.
    Each row: libraries, bytes each level adds, verify errors and warnings,
    speedup per level with its interval, the verdict and the 'hwcapdeb convert
    --drop' options to apply.  A failed build or a package without a bench
    command is a row that says so.
    """
    rows = collect(list(paths))
    if fmt == "json":
        emit_json(to_json(rows))
    else:
        click.echo(markdown(rows))
