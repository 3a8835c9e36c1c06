"""``hwcapdeb which SONAME``: which file the loader picks for a CPU, and why.

The answer comes from the model (hwcapdeb.loader); for the host CPU the real
loader is asked too (hwcapdeb.probe) and a disagreement is an error (exit 1).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import click

from hwcapdeb.commands import options
from hwcapdeb.cpu import apply_tunables, hwcaps_tunable
from hwcapdeb.cpu_sources import HOST, cpu_model
from hwcapdeb.dl_search import Resolution
from hwcapdeb.errors import MissingToolError, UsageError
from hwcapdeb.glibc_rules import glibc_release, host_arch
from hwcapdeb.loader import resolve
from hwcapdeb.output import emit_json
from hwcapdeb.probe import ProbeResult, cross_sysroot, default_program, probe
from hwcapdeb.profiles import architecture
from hwcapdeb.target_loader import host_loader, select_loader
from hwcapdeb.validate import check_file_name


def _can_emulate(arch_name: str, qemu_cpu: str | None) -> bool:
    """qemu-user is installed, and so is a loader of that architecture (native or cross)."""
    spec = architecture(arch_name)
    if not qemu_cpu or not spec.qemu or not shutil.which(spec.qemu):
        return False
    if host_arch() == arch_name:
        return True
    try:
        cross_sysroot(arch_name)
    except MissingToolError:
        return False
    return True


def _same_file(a: Path, b: Path) -> bool:
    """The same path as both would open it from this directory (the loader prints a
    relative path for an empty or relative library path entry)."""
    return os.path.normpath(os.path.abspath(a)) == os.path.normpath(os.path.abspath(b))


def _host_glibc() -> str | None:
    text = os.confstr("CS_GNU_LIBC_VERSION") if "CS_GNU_LIBC_VERSION" in os.confstr_names \
        else None
    return glibc_release(text.split()[-1]) if text and text.startswith("glibc ") else None


def _glibc_option(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    return None if value is None else glibc_release(value)


def _agreement(res: Resolution, real: ProbeResult) -> str | None:
    """None if the real loader agrees, else what differs."""
    if res.path is not None and real.path is not None:
        if _same_file(res.path, real.path):
            return None
        return f"the model says {res.path}, the real loader loads {real.path}"
    if res.path is None and real.path is None:
        return None
    if res.path is None:
        return f"the model says loading fails ({res.error}), the real loader loads {real.path}"
    return f"the model says {res.path}, the real loader fails ({real.error})"


@click.command("which")
@click.argument("soname")
@options.cpu_option(multiple=False, default=HOST, what="The CPU")
@options.arch_option(default="amd64")
@click.option("--glibc-tunables", "tunables", metavar="T",
              help="GLIBC_TUNABLES string, e.g. 'glibc.cpu.hwcaps=-AVX2'.")
@click.option("--library-path", "library_path", multiple=True, metavar="P",
              help="Directories searched first, like LD_LIBRARY_PATH (colon list; repeatable).")
@click.option("--root", type=click.Path(path_type=Path), metavar="R",
              help="Sysroot whose etc/ld.so.conf and system directories are searched "
                   "(default: this system).")
@click.option("--hwcaps-prepend", metavar="L", help="As ld.so --glibc-hwcaps-prepend.")
@click.option("--hwcaps-mask", metavar="L", help="As ld.so --glibc-hwcaps-mask.")
@click.option("--glibc", "glibc", metavar="V", callback=_glibc_option,
              help="The target's glibc release (e.g. 2.36): its rules apply (glibc-hwcaps "
                   "names it knows, legacy dirs up to 2.36; profiles/glibc.json). Default: the "
                   "--loader-root's, else the host's when its loader is asked (--real), else "
                   "the CPU model's if a real loader made it, else all names, no legacy dirs.")
@options.loader_root_option(default="the host's; the model follows the root's glibc release")
@click.option("--real/--no-real", "check_real", default=True, show_default=True,
              help="Also ask the real loader (host CPU, or a named CPU under qemu-user).")
@click.option("-v", "--verbose", is_flag=True, help="Show every path the loader tries.")
@options.json_option()
def command(
    soname: str, cpu_spec: str, arch_name: str, tunables: str | None,
    library_path: tuple[str, ...], root: Path | None, hwcaps_prepend: str | None,
    hwcaps_mask: str | None, glibc: str | None, loader_root: Path | None, check_real: bool,
    verbose: bool, as_json: bool,
) -> None:
    """Show which file the dynamic loader loads for SONAME, and why."""
    if not soname.strip():
        raise UsageError("an empty SONAME names no library",
                         hint="give the DT_SONAME, e.g. 'hwcapdeb which libz.so.1'")
    if any(c in soname for c in ": \t\n"):
        # ld.so --preload splits its list on ':' and blanks: the loader could not be asked
        raise UsageError(f"'{soname}' is not one SONAME (it holds ':' or a blank)",
                         hint="ask for one library at a time")
    if "/" not in soname:  # a path is opened as named; a SONAME must be a file name
        check_file_name(soname, what="SONAME", where="which", error=UsageError)
    target = select_loader(arch_name=arch_name, loader_root=loader_root) \
        if loader_root is not None else None
    if tunables is not None:
        hwcaps_tunable(tunables)  # malformed strings fail before any work
    base = cpu_model(cpu_spec, arch_name)
    cpu = apply_tunables(base, tunables)
    # one search path string, read by the model exactly as the loader reads the
    # --library-path it is given below (':' and ';', empty entries, $ORIGIN...)
    path_string = ":".join(library_path)
    dirs = [path_string] if library_path else []
    # the real loader answers for the host (or the --loader-root's loader), and for a
    # named CPU qemu-user emulates; the model is compared only when asked about the
    # same loader (no sysroot, the same glibc release)
    qemu = None if cpu_spec == HOST else base.qemu_cpu
    asked_glibc = target.glibc if target is not None else (
        host_loader(architecture(arch_name)).glibc if arch_name == host_arch() else _host_glibc())
    if glibc is None and root is None and check_real:
        glibc = asked_glibc  # the model follows the loader it is compared with
    compare = check_real and root is None and glibc == asked_glibc and (
        (cpu_spec == HOST and host_arch() == arch_name) or _can_emulate(arch_name, qemu))
    res = resolve(soname, cpu, library_path=dirs, root=root, hwcaps_prepend=hwcaps_prepend,
                  hwcaps_mask=hwcaps_mask, glibc=glibc, program_origin=default_program().parent)
    real: ProbeResult | None = None
    disagreement = None
    if compare:
        real = probe(soname, library_path=dirs, tunables=tunables, hwcaps_prepend=hwcaps_prepend,
                     hwcaps_mask=hwcaps_mask, qemu_cpu=qemu, arch=arch_name, loader=target)
        disagreement = _agreement(res, real)
    ctx = click.get_current_context()
    if as_json:
        emit_json({
            **res.to_json(),
            "cpu": cpu.to_json(),
            "real_loader": None if real is None else {
                "path": str(real.path) if real.path else None,
                "error": real.error,
                "argv": list(real.argv),
                "qemu_cpu": qemu,
                "agrees": disagreement is None,
                "loader": (target or host_loader(architecture(arch_name))).to_json(),
            },
        })
    else:
        for note in cpu.ignored_tunables:
            click.echo(f"hwcapdeb: warning: glibc ignores {note}", err=True)
        if verbose:
            click.echo(f"cpu: {cpu.name} ({cpu.source})")
            for step in res.trace:
                click.echo(f"  {step.verdict:12} {step.path}: {step.reason}")
        if res.path is not None:
            level = res.level.name if res.level else (
                f"legacy hwcaps directory {res.legacy_dir}/" if res.legacy_dir
                else "opened as named, no search" if "/" in soname else "prepended directory")
            click.echo(f"{soname} => {res.path} ({level})")
        else:
            click.echo(f"{soname}: not loaded: {res.error}")
        if real is not None and disagreement is None:
            where = f" ({architecture(arch_name).qemu} -cpu {qemu})" if qemu else ""
            which = f" glibc {target.glibc} ({target.source})" if target else ""
            click.echo(f"real loader{which}{where}: agrees")
    if disagreement is not None and real is not None:
        click.echo(f"hwcapdeb: warning: real loader disagrees: {disagreement} "
                   f"(ran: {real.command})", err=True)
        ctx.exit(1)
    if res.path is None:
        ctx.exit(1)
