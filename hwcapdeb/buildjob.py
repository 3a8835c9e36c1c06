"""The job behind ``hwcapdeb build``: scratch copy, convert, build, collect.

The user's tree is never touched: a source directory is copied (VCS metadata
left out) and a .dsc is unpacked with dpkg-source into a scratch directory;
the copy is converted (:mod:`hwcapdeb.convert.conversion`) and built by a
:class:`~hwcapdeb.builders.Builder`.  The build log and the per-variant logs the
generated rules write land in the output directory whatever the outcome.

Progress comes from the build log itself: the generated rules print
``hwcapdeb: <variant>: <message>`` lines, which :func:`parse_progress` turns
into :class:`Progress` events, so any builder (dpkg, sbuild) gets the same
display.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from debian.deb822 import Dsc

from hwcapdeb.builders import BuildRequest, BuildResult, get_builder
from hwcapdeb.builders.dpkg import BuildFailed, UnmetBuildDependencies, source_identity
from hwcapdeb.convert.conversion import convert
from hwcapdeb.convert.options import ConvertOptions
from hwcapdeb.errors import InputError, UsageError
from hwcapdeb.profiles import Profile
from hwcapdeb.source import unpack_dsc
from hwcapdeb.validate import check_package_name, check_version, read_bytes

VARIANT_TESTS = ("auto", "all", "none")

#: the line the generated rules print for each step of a variant
#: a progress line of variants.sh; searched, not matched: a line the baseline
#: build had not finished when a variant lane wrote may precede it
_PROGRESS = re.compile(r"(?:^|(?<=\s))hwcapdeb: (?P<variant>[A-Za-z0-9._+-]+): (?P<message>.*)$")

#: directories never copied into the scratch tree
_VCS = (".git", ".svn", ".hg", ".bzr", "_darcs", ".pc.orig")


@dataclass(frozen=True)
class Progress:
    """One progress line of the build: which variant and what it is doing."""

    variant: str
    message: str

    @property
    def failed(self) -> bool:
        return re.search(r"\bfailed\b", self.message) is not None and "passed" not in self.message

    @property
    def finished(self) -> bool:
        return self.message.startswith(("build done", "done", "installed"))


def parse_progress(line: str) -> Progress | None:
    """The :class:`Progress` of a build-log line, or None for any other line."""
    match = _PROGRESS.search(line.strip())
    if match is None or match.group("variant") in {"error", "warning", "info"}:
        return None
    return Progress(match.group("variant"), match.group("message").strip())


@dataclass(frozen=True)
class BuildJob:
    """What to build and how."""

    source: Path  # a source directory with debian/, or a .dsc
    profiles: tuple[Profile, ...]
    out_dir: Path
    jobs: int = 0
    variant_tests: str = "auto"
    builder: str = "dpkg"
    nocheck: bool = False
    convert: bool = True  # False builds the package unchanged (for comparisons)
    layout: str = "inline"  # hwcapdeb convert --layout
    variant_make_vars: tuple[str, ...] = ()  # hwcapdeb convert --variant-make-var
    variant_env: tuple[str, ...] = ()  # hwcapdeb convert --variant-env
    #: hwcapdeb convert --mode: embed, addon (needs dh-hwcaps: installed on the
    #: host for dpkg, --extra-package for sbuild), None: addon for dh rules
    mode: str | None = "embed"
    keep_work: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()  # given to the builder program as they are


@dataclass(frozen=True)
class BuildOutcome:
    """What a job produced, and how long the build took."""

    source: str
    version: str
    result: BuildResult
    variant_logs: dict[str, Path]
    seconds: float
    work_dir: Path | None  # kept scratch directory (keep_work), else None


class VariantBuildFailed(BuildFailed):
    """The build failed; ``variant`` names the variant whose step was running.

    The message names the step that failed and quotes its first error line, from
    the variant's own log if it has one, else from the whole build's log: a
    variant that was only building when the baseline failed (its log ends well)
    is named, but the error quoted and the log shown are the build's.
    """

    def __init__(self, cause: BuildFailed, *, variant: str | None, variant_log: Path | None):
        where = f"variant {variant}" if variant else "the build"
        own = failure_point(variant_log) if variant_log else (None, None)
        if variant_log and own[1] is None:
            variant_log = None  # its log shows no error: the build's log has it
        step, line = own if own[1] else failure_point(cause.log)
        message = f"{where} failed: {cause.message}"
        if line:
            message += f"; {'at ' + step + ': ' if step else ''}{line}"
        log = variant_log or cause.log
        hint = cause.hint
        if variant_log:
            hint = f"its log is {variant_log}, the whole build's {cause.log}"
        super().__init__(message, log=log, tail=_tail_of(log) or cause.tail, hint=hint)
        self.variant = variant
        self.build_log = cause.log


#: a step of a build log: a debhelper command or a debian/rules target dh runs
_STEP = re.compile(r"^\s*(dh_[a-z_]+|debian/rules [\w.-]+|dh [\w-]+)(\s|$)")
#: an error line: "...: error: ...", "No such file or directory", make's "***"
_ERROR = re.compile(
    r"(^|[\s:])(error|Error|ERROR):|No such file or directory|^make(\[\d+\])?: \*\*\*"
)


def failure_point(log: Path | None) -> tuple[str | None, str | None]:
    """(step, line): the first error line of ``log`` and the step that was running."""
    if log is None:
        return None, None
    step = None
    try:
        with log.open(encoding="utf-8", errors="replace") as fh:
            for raw in fh:
                line = raw.rstrip("\n")
                match = _STEP.match(line)
                if match:
                    step = match.group(1)
                elif _ERROR.search(line):
                    return step, line.strip()[:300]
    except OSError:
        pass
    return None, None


def _tail_of(path: Path, count: int = 25) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    return lines[-count:]


def read_dsc(path: Path) -> tuple[str, str]:
    """(source, version) of a .dsc whose files are all beside it; InputError otherwise."""
    not_dsc = InputError(
        f"{path} is not a Debian source control file (no Source, Version or Files field)",
        hint="pass a .dsc as written by dpkg-source or apt-get source",
    )
    try:
        dsc = Dsc(read_bytes(path, what=".dsc").decode("utf-8", errors="replace"))
        source, version = dsc.get("Source"), dsc.get("Version")
        if not source or not version or "Files" not in dsc:
            raise not_dsc
        files = [f["name"] for f in dsc["Files"]]
    except (ValueError, KeyError, TypeError):  # python-debian's parse errors
        raise not_dsc from None
    # both name the scratch tree: no '/' may slip into that path
    check_package_name(source, field="Source", where=str(path))
    check_version(version, where=str(path))
    missing = [name for name in files if "/" in name or not (path.parent / name).is_file()]
    if missing:
        raise InputError(
            f"{path} lists files that are not beside it: {', '.join(missing)}",
            hint="fetch them with 'dget' or 'apt-get source --download-only'",
        )
    return source, version


def check_source(source: Path) -> None:
    """Refuse an input that is neither a source tree nor a readable .dsc."""
    if not source.exists():
        raise InputError(f"{source} does not exist", hint="pass a source tree or a .dsc file")
    if source.is_dir():
        if not (source / "debian").is_dir():
            raise InputError(
                f"{source} has no debian/ directory",
                hint="pass an unpacked Debian source tree or a .dsc file",
            )
        if not (source / "debian" / "control").is_file():
            raise InputError(f"{source}/debian has no control file")
        source_identity(source)
    elif source.suffix != ".dsc":
        raise InputError(f"{source} is not a .dsc file", hint="pass a source tree or a .dsc file")
    else:
        read_dsc(source)


def _copy_regular(src: str, dst: str) -> object:
    """shutil.copy2 for regular files; a FIFO or device in a source tree would hang it."""
    if not stat.S_ISREG(os.stat(src).st_mode):
        raise InputError(f"{src} is not a regular file (a FIFO, socket or device)",
                         hint="a source tree holds files, directories and links only")
    return shutil.copy2(src, dst)


def scratch_tree(source: Path, work: Path) -> Path:
    """Copy or unpack ``source`` into ``work``; the returned tree is ours to change.

    The upstream tarballs end up beside the tree (dpkg-source -x copies them).
    """
    if source.is_dir():
        name, version = source_identity(source)
        upstream = version.rsplit("-", 1)[0]
        tree = work / f"{name}-{upstream}"
        try:
            shutil.copytree(source, tree, symlinks=True, ignore=shutil.ignore_patterns(*_VCS),
                            copy_function=_copy_regular)
        except shutil.Error as err:  # unreadable files: copytree lists them all
            first = err.args[0][0] if err.args and err.args[0] else ("?", "?", str(err))
            raise InputError(f"cannot copy {source}: {first[0]}: {first[-1]}") from None
        # Upstream tarballs beside the tree go beside the copy too: dpkg-source -b
        # (the sbuild builder) needs them for a non-native format.
        for orig in source.parent.glob(f"{glob.escape(name)}_{glob.escape(upstream)}.orig*"):
            (work / orig.name).symlink_to(orig.resolve())
        return tree
    name, version = read_dsc(source)
    upstream = version.split(":", 1)[-1].rsplit("-", 1)[0]
    return unpack_dsc(source, work / f"{name}-{upstream}")


def convert_tree(tree: Path, job: BuildJob) -> None:
    """Convert the scratch tree as ``hwcapdeb convert`` would, with the job's options."""
    options = ConvertOptions(
        profiles=tuple(job.profiles),
        layout=job.layout,
        variant_make_vars=job.variant_make_vars,
        variant_env=job.variant_env,
        mode=job.mode,
    )
    convert(tree, options)


def addon_converted(tree: Path) -> bool:
    """Did the conversion take addon mode (debian/hwcaps, no embedded machinery)?"""
    return (tree / "debian" / "hwcaps").is_file() and not (tree / "debian" / "hwcapdeb").exists()


def dh_hwcaps_args(builder: str) -> tuple[str, ...]:
    """What an addon-mode build needs of dh-hwcaps: installed here (dpkg) or given to sbuild."""
    from hwcapdeb.builders import dh_hwcaps

    deb = dh_hwcaps.find_deb()
    if builder == "sbuild":
        return (f"--extra-package={deb}",)
    dh_hwcaps.ensure_installed(deb)
    return ()


#: where the generated rules keep one log per variant (debian/hwcapdeb/logs/<level>.log),
#: and <level>.log.1 for the first attempt of a variant built twice
VARIANT_LOG_DIR = Path("debian") / "hwcapdeb" / "logs"
#: the same in addon mode (dh-hwcaps)
ADDON_VARIANT_LOG_DIR = Path("debian") / ".hwcaps" / "logs"
#: suffix of the first attempt's key in :func:`variant_logs`
FIRST_ATTEMPT = ".first-attempt"


def variant_logs(tree: Path) -> dict[str, Path]:
    """variant -> log file the generated rules wrote in the tree (empty if none).

    A variant built again (without the build-saving settings) also has
    ``<variant>.first-attempt``: the log that says why the first build failed.
    """
    directory = tree / VARIANT_LOG_DIR
    if not directory.is_dir():
        directory = tree / ADDON_VARIANT_LOG_DIR
    if not directory.is_dir():
        return {}
    logs = {path.stem: path for path in sorted(directory.glob("*.log"))}
    for path in sorted(directory.glob("*.log.1")):
        logs[path.name.removesuffix(".log.1") + FIRST_ATTEMPT] = path
    return logs


def _copy_variant_logs(tree: Path, out_dir: Path, stem: str) -> dict[str, Path]:
    copied: dict[str, Path] = {}
    for variant, path in variant_logs(tree).items():
        target = out_dir / f"{stem}.{variant}.log"
        shutil.copyfile(path, target)
        copied[variant] = target
    return copied


def run_job(job: BuildJob, *, on_line: Callable[[str], None] | None = None) -> BuildOutcome:
    """Convert a scratch copy of ``job.source`` and build it; the user's tree stays as it was."""
    if job.variant_tests not in VARIANT_TESTS:
        raise UsageError(
            f"unknown --variant-tests value '{job.variant_tests}'",
            hint=f"choose one of: {', '.join(VARIANT_TESTS)}",
        )
    if job.convert and not job.profiles:
        raise UsageError(
            "no profile given", hint="pass --profile x86-64-v3 (see 'hwcapdeb profiles')"
        )
    source = job.source
    check_source(source)
    builder = get_builder(job.builder)
    builder.check()
    job.out_dir.mkdir(parents=True, exist_ok=True)
    out_dir = job.out_dir.resolve()
    work = Path(tempfile.mkdtemp(prefix="hwcapdeb-build-"))
    keep = job.keep_work
    try:
        tree = scratch_tree(source.resolve(), work)
        name, version = source_identity(tree)
        extra_args = job.extra_args
        if job.convert:
            convert_tree(tree, job)
            if addon_converted(tree):
                extra_args = (*dh_hwcaps_args(builder.name), *extra_args)
        env = {"HWCAPDEB_VARIANT_TESTS": job.variant_tests, **job.extra_env}
        request = BuildRequest(
            source=tree,
            out_dir=out_dir,
            jobs=job.jobs,
            nocheck=job.nocheck,
            env=env,
            extra_args=extra_args,
            on_line=on_line,
        )
        started = time.monotonic()
        stem = f"{name}_{version.split(':', 1)[-1]}"
        try:
            result = builder.build(request)
        except UnmetBuildDependencies as err:
            target = source if source.is_file() else source.resolve()
            raise UnmetBuildDependencies(
                err.deps,
                conflicts=err.conflicts,
                hint=f"install them with 'apt-get build-dep {target}'",
            ) from None
        except BuildFailed as err:
            logs = _copy_variant_logs(tree, out_dir, stem)
            failed = failed_variant(err.log, [p.level.name for p in job.profiles])
            raise VariantBuildFailed(
                err, variant=failed, variant_log=logs.get(failed) if failed else None
            ) from None
        seconds = time.monotonic() - started
        logs = _copy_variant_logs(tree, out_dir, stem)
        return BuildOutcome(
            source=name,
            version=version,
            result=result,
            variant_logs=logs,
            seconds=seconds,
            work_dir=work if keep else None,
        )
    finally:
        if not keep:
            with contextlib.suppress(OSError):
                shutil.rmtree(work)


def failed_variant(log: Path, variants: Sequence[str]) -> str | None:
    """The variant that reported a failure, or whose build was running, when the build stopped."""
    running: str | None = None
    failed: str | None = None
    try:
        with log.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                match = _PROGRESS.search(line.strip())
                if match is None:
                    continue
                variant, message = match.group("variant"), match.group("message")
                if variant == "error":  # "hwcapdeb: error: <variant>: what went wrong"
                    named = message.split(": ", 1)[0]
                    if named in variants:
                        failed = named
                    continue
                progress = Progress(variant, message)
                if progress.failed:
                    failed = variant
                elif message.startswith("build started"):
                    running = variant
                elif progress.finished and running == variant:
                    running = None
    except OSError:
        return None
    return failed or running
