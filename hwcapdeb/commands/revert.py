"""``hwcapdeb revert``: restore a converted source package exactly."""

from __future__ import annotations

from pathlib import Path

import click

from hwcapdeb.convert.revert import revert


@click.command("revert")
@click.argument("src_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--dry-run", "-n", is_flag=True, help="Print the diff; change nothing.")
def command(src_dir: Path, dry_run: bool) -> None:
    """Undo 'hwcapdeb convert' in SRC_DIR: every file byte for byte, modes too.

    Refuses (changing nothing) if a file the conversion wrote was edited since.
    """
    plan = revert(src_dir, dry_run=dry_run)
    if dry_run:
        click.echo(plan.diff(), nl=False)
