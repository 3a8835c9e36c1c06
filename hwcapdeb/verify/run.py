"""The whole run of ``hwcapdeb verify``: open the inputs, collect the libraries,
audit each build, run the checks and the dispatch matrix, return the Report."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Sequence
from pathlib import Path

from hwcapdeb.debfile import PackageTree, open_inputs
from hwcapdeb.elf_code import debug_file_for
from hwcapdeb.errors import HwcapdebError, InputError
from hwcapdeb.findings import Finding
from hwcapdeb.glibc_rules import host_arch
from hwcapdeb.isa_audit import audit
from hwcapdeb.library import LibraryFile, collect_libraries
from hwcapdeb.profiles import Architecture, architecture
from hwcapdeb.target_loader import TargetLoader, select_loader
from hwcapdeb.verify.checks import check_library, check_matrix, check_target_loader
from hwcapdeb.verify.matrix import Cell, dispatch_matrix
from hwcapdeb.verify.report import Report, SizeRow

#: how findings are listed: errors first, then by package, path and tag
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def _debug_roots(trees: Sequence[PackageTree], extra: Sequence[Path]) -> list[Path]:
    debug = [t.root for t in trees if t.is_debug]
    return [*debug, *(t.root for t in trees if not t.is_debug), *extra]


def _packages_arch(trees: Sequence[PackageTree]) -> str:
    found = {t.architecture for t in trees if t.architecture and t.architecture != "all"}
    if len(found) > 1:
        raise InputError(f"packages of several architectures: {', '.join(sorted(found))}",
                         hint="verify one architecture at a time, or pass --arch")
    return found.pop() if found else "amd64"


def _debug_file(build: LibraryFile, debug_roots: Sequence[Path]) -> Path | None:
    return debug_file_for(build.facts.build_id, debug_roots)


def _audit(build: LibraryFile, arch: Architecture, debug_roots: Sequence[Path]) -> list[Finding]:
    """Set ``build.audit`` (x86-64 code only: iced-x86 decodes x86); a file the audit
    cannot read is a finding."""
    try:
        if arch.has_isa_marker and build.facts.machine == "EM_X86_64":
            debug = _debug_file(build, debug_roots)
            build.audit = audit(build.file, arch_name=arch.arch, debug_file=debug)
    except HwcapdebError as err:
        return [Finding("error", "unreadable-file", build.package, build.relpath, err.message)]
    return []


def verify_trees(
    trees: Sequence[PackageTree],
    *,
    cpus: Sequence[str] | None = None,
    arch_name: str | None = None,
    debug_roots: Sequence[Path] = (),
    ask_real_loader: bool = True,
    target: TargetLoader | None = None,
) -> Report:
    """Check every library with variants in the (already unpacked) ``trees``.

    ``ask_real_loader``: also ask the real loader for the host rows of the matrix.
    ``target``: the ld.so asked (hwcapdeb.target_loader; default the host's); the
    model follows its glibc release.

    ``arch_name`` defaults to the packages' Architecture field (amd64 if none says).
    The instruction audit and the dispatch matrix need x86 (iced-x86 decodes x86,
    and CPU models exist for x86 only); other architectures get the layout, ABI and
    marker checks.
    """
    arch = architecture(arch_name or _packages_arch(trees))
    libraries, findings = collect_libraries(arch, trees)
    roots = _debug_roots(trees, debug_roots)
    sizes: list[SizeRow] = []
    for lib in libraries:
        for build in lib.builds:
            findings += _audit(build, arch, roots)
            sizes.append(SizeRow(build.package, lib.soname, build.level.name, build.size,
                                 build.level.is_baseline))
        findings += check_library(arch, lib)
    cells: list[Cell] = []
    cpu_names: list[str] = []
    if arch.has_isa_marker:  # CPU models exist for x86 only
        cells, cpu_names = dispatch_matrix(trees, libraries, arch, cpus=cpus,
                                           ask_real_loader=ask_real_loader, target=target)
    findings += check_target_loader(libraries, target)
    findings += check_matrix(cells, findings, target)
    findings.sort(key=lambda f: (_SEVERITY_ORDER[f.severity], f.package, f.path, f.tag))
    return Report(findings, cells, cpu_names, sizes, libraries, arch.arch, target)


def verify_paths(
    paths: Sequence[Path | str],
    *,
    cpus: Sequence[str] | None = None,
    arch_name: str | None = None,
    debug_roots: Sequence[Path] = (),
    ask_real_loader: bool = True,
    scratch: Path | None = None,
    loader_root: Path | None = None,
    detect_loader: bool = True,
) -> Report:
    """Verify .deb files, .changes files or directory trees.

    ``cpus``: matrix rows (archspec names, ``host``, ``host:glibc.cpu.hwcaps=-AVX2``,
    saved cpuinfo files); default :data:`hwcapdeb.verify.matrix.DEFAULT_CPUS`.
    ``debug_roots``: extra roots holding ``usr/lib/debug/.build-id`` (``/`` for the
    installed -dbgsym packages).  ``ask_real_loader``: also ask the real loader for
    the host rows.  ``loader_root``: the target's root or chroot tarball; else
    (``detect_loader``) the loader comes from the .changes/.buildinfo
    (hwcapdeb.target_loader.select_loader).  Raises InputError for unreadable inputs
    (the CLI maps that to exit 2).
    """
    if not paths:
        raise InputError("nothing to verify", hint="give .deb, .changes files or directories")
    with contextlib.ExitStack() as stack:
        work = scratch or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="hwcapdeb-"))
        )
        trees = open_inputs([Path(p) for p in paths], work)
        target = None
        arch = arch_name or _packages_arch(trees)
        host_ld_so = architecture(arch).loader
        if loader_root is not None or (detect_loader and host_ld_so and Path(host_ld_so).exists()
                                       and arch == host_arch()):
            target = select_loader([Path(p) for p in paths], arch, loader_root=loader_root)
        return verify_trees(trees, cpus=cpus, arch_name=arch_name, debug_roots=debug_roots,
                            ask_real_loader=ask_real_loader, target=target)
