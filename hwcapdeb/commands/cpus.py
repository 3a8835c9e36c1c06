"""``hwcapdeb cpus``: named CPUs, the highest glibc-hwcaps level each reaches, and why not more."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from hwcapdeb.commands import options
from hwcapdeb.cpu import CpuModel, highest_level, why_not
from hwcapdeb.cpu_sources import HOST, REPRESENTATIVE_CPUS, cpu_model, hwcap_tables
from hwcapdeb.glibc_rules import host_arch
from hwcapdeb.output import emit_json
from hwcapdeb.profiles import architecture


def _next_gap(model: CpuModel) -> tuple[str | None, list[str]]:
    arch = architecture(model.arch)
    best = highest_level(model)
    nxt = next((lv for lv in arch.all_levels if lv.rank == best.rank + 1), None)
    return (nxt.name, why_not(model, nxt)) if nxt else (None, [])


@click.command("cpus")
@options.arch_option(default="amd64")
@options.cpu_option(multiple=True, what="Also show this CPU")
@options.json_option()
def command(arch_name: str, cpus: tuple[str, ...], as_json: bool) -> None:
    """Named CPUs with the highest glibc-hwcaps level each loads, and what the next one needs."""
    arch = architecture(arch_name)
    arch.require_hwcaps()
    tables = hwcap_tables()
    names = list(tables[arch_name].named) if arch_name in tables else list(REPRESENTATIVE_CPUS)
    models = [cpu_model(name, arch_name) for name in (*names, *cpus)]
    if host_arch() == arch_name:
        models.append(cpu_model(HOST, arch_name))
    if as_json:
        emit_json({"arch": arch_name, "cpus": [m.to_json() for m in models]})
        return
    table = Table(box=None, pad_edge=False)
    for column in ("cpu", "level", "qemu", "next level needs"):
        table.add_column(column)
    for model in models:
        nxt, missing = _next_gap(model)
        gap = f"{nxt}: {' '.join(missing)}" if nxt else "-"
        table.add_row(model.name, highest_level(model).name, model.qemu_cpu or "-", gap)
    console = Console(width=200) if not Console().is_terminal else Console()
    console.print(table)
    if host_arch() == arch_name:
        click.echo(f"host: {models[-1].source}")
