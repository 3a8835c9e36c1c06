"""``hwcapdeb profiles``: the glibc-hwcaps levels and build profiles per architecture."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from hwcapdeb.commands import options
from hwcapdeb.output import emit_json
from hwcapdeb.profiles import ProfileRegistry, architecture, architectures


@click.command("profiles")
@options.arch_option(note="default: all with glibc-hwcaps")
@options.json_option()
def command(arch_name: str | None, as_json: bool) -> None:
    """List glibc-hwcaps levels (with glibc's feature lists) and the build profiles."""
    if arch_name:
        arch = architecture(arch_name)
        arch.require_hwcaps()
        arches = [arch]
    else:
        arches = [a for a in architectures().values() if a.glibc_hwcaps]
    registry = ProfileRegistry()
    if as_json:
        emit_json(
            {
                "architectures": [
                    {
                        "arch": a.arch,
                        "triplet": a.triplet,
                        "source": a.source,
                        "levels": [
                            {
                                "name": lv.name,
                                "adds": list(lv.adds),
                                "features": sorted(lv.features),
                                "marker_bit": lv.marker_bit,
                                "glibc_min": lv.glibc_min,
                            }
                            for lv in a.all_levels
                        ],
                        "profiles": [p.to_json() for p in registry.all(a.arch)],
                    }
                    for a in arches
                ]
            }
        )
        return
    console = Console()
    for a in arches:
        table = Table(title=f"{a.arch} ({a.triplet})", title_justify="left")
        for column in ("level", "adds (glibc names)", "marker", "profiles"):
            table.add_column(column)
        for lv in a.all_levels:
            names = ", ".join(p.name for p in registry.all(a.arch) if p.level == lv)
            marker = f"0x{lv.marker_bits:x}" if lv.marker_bit is not None else "-"
            table.add_row(lv.name, " ".join(lv.adds), marker, names)
        console.print(table)
