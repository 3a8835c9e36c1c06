"""``hwcapdeb verify``: check built multi-level packages (thin layer over hwcapdeb.verify)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from hwcapdeb.commands import options
from hwcapdeb.output import emit_json
from hwcapdeb.tags import explain, lookup
from hwcapdeb.verify import Report, verify_paths


def _matrix_table(report: Report) -> Table:
    """One row per CPU, one column per library: the level loaded, unsafe in red."""
    table = Table(title="dispatch matrix", title_justify="left")
    table.add_column("cpu")
    for lib in report.libraries:
        table.add_column(f"{lib.package}\n{lib.soname}")
    cells = {(c.cpu, c.libdir, c.library): c for c in report.matrix}
    for cpu in report.cpus:
        row = [cpu]
        for lib in report.libraries:
            cell = cells.get((cpu, lib.libdir, lib.soname))
            if cell is None:
                row.append("")
                continue
            text = (cell.level or "?") if cell.resolved else "fails"
            if not cell.safe:
                text = f"[red]{text} UNSAFE[/red]"
            if cell.agrees is True:
                text += " (ld.so agrees)"
            elif cell.agrees is False:
                text += f" [red](ld.so: {cell.real})[/red]"
            row.append(text)
        table.add_row(*row)
    return table


def _size_table(report: Report) -> Table:
    table = Table(title="bytes per build", title_justify="left")
    for column in ("package", "library", "level", "bytes"):
        table.add_column(column, justify="right" if column == "bytes" else "left")
    for row in report.sizes:
        table.add_row(row.package, row.library, row.level, f"{row.bytes:,}")
    for package, added in sorted(report.added_bytes().items()):
        table.add_row(package, "(variants add)", "", f"{added:,}")
    return table


def _explain(ctx: click.Context, _param: click.Parameter, names: tuple[str, ...]) -> None:
    """--explain TAG: print the catalogue entries and stop (no PATH needed)."""
    if not names or ctx.resilient_parsing:
        return
    tags = [lookup(name) for name in names]  # an unknown one: one line, exit 2, before any output
    click.echo("\n".join(explain(tag) for tag in tags), nl=False)
    ctx.exit(0)


@click.command("verify")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...",
                type=click.Path(path_type=Path))
@options.cpu_option(multiple=True, what="Matrix row",
                    also=", or 'host:glibc.cpu.hwcaps=-AVX2' (the host with a mask)",
                    default_text="x86_64 to zen4 and the host")
@options.arch_option(note="default: the packages' Architecture field")
@click.option("--debug-root", "debug_roots", multiple=True, type=click.Path(path_type=Path),
              help="Root with usr/lib/debug/.build-id (e.g. / for installed -dbgsym packages).")
@click.option("--matrix", "show_matrix", is_flag=True,
              help="Also print the dispatch matrix and the size report.")
@click.option("--no-probe", "no_real_loader", is_flag=True,
              help="Do not ask the real loader for the host rows.")
@options.loader_root_option(default="found from a .changes/.buildinfo, else the host's")
@options.json_option()
@click.option("--explain", multiple=True, metavar="TAG", is_eager=True, expose_value=False,
              callback=_explain,
              help="Print what finding TAG means and what to do, then exit; repeatable.")
def command(paths: tuple[Path, ...], cpus: tuple[str, ...], arch_name: str | None,
            debug_roots: tuple[Path, ...], show_matrix: bool, no_real_loader: bool,
            loader_root: Path | None, as_json: bool) -> None:
    """Check .deb files, a .changes file or unpacked trees that ship glibc-hwcaps variants.

    Prints lintian-style findings (E: error, W: warning); exit status 1 if any
    error was found, 2 if the check could not run, 0 (silently) otherwise.
    """
    report = verify_paths(list(paths), cpus=list(cpus) or None, arch_name=arch_name,
                          debug_roots=list(debug_roots), ask_real_loader=not no_real_loader,
                          loader_root=loader_root)
    if as_json:
        emit_json(report.to_json())
    else:
        for finding in report.findings:
            click.echo(finding.lintian_line())
        if show_matrix and report.loader is not None:
            click.echo(f"loader: {report.loader.describe()}")
        if show_matrix:
            # logs (sbuild, CI) are not terminals: do not cut the CPU labels at 80 columns
            console = Console() if sys.stdout.isatty() else Console(width=200)
            console.print(_matrix_table(report))
            console.print(_size_table(report))
        if not report.libraries:
            click.echo("hwcapdeb: no library with glibc-hwcaps variants found", err=True)
    if report.exit_code:
        click.get_current_context().exit(report.exit_code)
