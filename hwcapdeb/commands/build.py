"""``hwcapdeb build``: convert a scratch copy of a source package and build it."""

from __future__ import annotations

import re
from pathlib import Path

import click
from rich.console import Console
from rich.progress import Progress as RichProgress
from rich.progress import SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from hwcapdeb.bench.after_build import bench_setting, write_results
from hwcapdeb.builders import available_builders
from hwcapdeb.builders.dpkg import BuildFailed, host_arch
from hwcapdeb.buildjob import VARIANT_TESTS, BuildJob, BuildOutcome, parse_progress, run_job
from hwcapdeb.commands import options
from hwcapdeb.errors import UsageError
from hwcapdeb.profiles import BASELINE, Profile, ProfileRegistry, check_profile
from hwcapdeb.sbuild.builder import DEFAULT_CACHE
from hwcapdeb.sbuild.chroot import check_dist

_DH_STEP = re.compile(r"^   (dh_[a-z_]+|debian/rules [a-z_-]+)")


class VariantDisplay:
    """One spinner line per variant, fed by the build's output lines.

    The variants print ``hwcapdeb: <level>: ...`` lines; the baseline is the
    maintainer's own build (its debhelper steps are what the main log shows,
    the variants write their own logs) and ends when packaging starts, which
    the last line follows (dpkg-deb building each package).
    """

    PACKAGES = "packages"

    def __init__(self, console: Console, variants: list[str]) -> None:
        self.progress = RichProgress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("[bold]{task.fields[variant]:<10}[/]"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[str, TaskID] = {}
        for variant in variants:
            self._task(variant, "building (debian/rules)" if variant == BASELINE else "waiting")
        self._task(self.PACKAGES, "waiting")
        self.packaging = False

    def _task(self, variant: str, message: str) -> TaskID:
        if variant not in self.tasks:
            self.tasks[variant] = self.progress.add_task(message, variant=variant, total=1)
        return self.tasks[variant]

    def _start_packaging(self) -> None:
        if not self.packaging:
            self.packaging = True
            self.progress.update(self.tasks[BASELINE], description="done", completed=1)
            self.progress.update(self.tasks[self.PACKAGES], description="installing variants")

    def __call__(self, line: str) -> None:
        if line.startswith("dpkg-deb: building package"):
            self._start_packaging()
            package = line.split("'")[1] if "'" in line else line.split()[-1]
            self.progress.update(self.tasks[self.PACKAGES], description=f"building {package}")
            return
        step = _DH_STEP.match(line)
        if step is not None and not self.packaging:
            self.progress.update(self.tasks[BASELINE], description=step.group(1))
            return
        event = parse_progress(line)
        if event is None:
            return
        if event.message.startswith("installed"):  # the binary targets install the variants
            self._start_packaging()
        task = self._task(event.variant, event.message)
        if event.finished or event.failed:
            self.progress.update(task, completed=1)
        if not event.message.startswith("installed"):
            self.progress.update(task, description=event.message[:70])


def _resolve_profiles(names: tuple[str, ...], arch: str) -> list[Profile]:
    profiles = ProfileRegistry().resolve_many(list(names), arch)
    for profile in profiles:
        check_profile(profile)
    foreign = [p for p in profiles if p.arch != arch]
    if foreign:
        raise UsageError(
            f"profile '{foreign[0].name}' is for {foreign[0].arch}, but this machine builds {arch}",
            hint="'hwcapdeb profiles --arch " + arch + "' lists the profiles for it",
        )
    if not profiles:
        raise UsageError(
            "no profile besides the baseline given", hint="pass e.g. --profile x86-64-v3"
        )
    return profiles


def _summary(outcome: BuildOutcome, profiles: list[Profile]) -> None:
    levels = ", ".join(p.level.name for p in profiles)
    debs = outcome.result.debs
    click.echo(
        f"built {outcome.source} {outcome.version} with {levels} "
        f"in {outcome.seconds:.0f}s: {len(debs)} packages in {outcome.result.debs[0].parent}"
        if debs
        else f"built {outcome.source} {outcome.version}: no packages"
    )
    for deb in debs:
        click.echo(f"  {deb.name}")
    if outcome.result.changes is not None:
        click.echo(f"  {outcome.result.changes.name}")


@click.command("build")
@click.argument("source", metavar="SRC_DIR|FILE.dsc", type=click.Path(path_type=Path))
@options.profile_option()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Directory for the .debs, .changes, .buildinfo and the logs.",
)
@click.option(
    "-j", "--jobs", type=click.IntRange(min=0), default=0, help="Parallel jobs (0: all CPUs)."
)
@click.option(
    "--variant-tests",
    type=click.Choice(VARIANT_TESTS),
    default="auto",
    show_default=True,
    help="Run the package's tests against variants: those this CPU can run, all, or none.",
)
@click.option(
    "--builder",
    type=click.Choice(available_builders()),
    default="dpkg",
    show_default=True,
    help="How to build: dpkg-buildpackage here, or sbuild in a clean chroot.",
)
@options.dist_option(
    prefix="With --builder sbuild: ",
    default="this machine's; the chroot tarball is ~/.cache/sbuild/RELEASE-ARCH.tar.zst",
)
@options.layout_option()
@options.mode_option()
@options.variant_make_var_option()
@options.variant_env_option()
@click.option(
    "--builder-arg",
    "--sbuild-arg",
    "builder_args",
    multiple=True,
    metavar="ARG",
    help="Pass ARG to the builder program (dpkg-buildpackage or sbuild); repeatable.",
)
@click.option(
    "--keep-work", is_flag=True, help="Keep the converted scratch tree and print its path."
)
@click.option(
    "--bench",
    "bench_options",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PACKAGE_OPTIONS",
    help="After the build, save verify's JSON and, if the package has a Bench-Command in this "
    "deb822 file, bench's JSON beside the .changes (for 'hwcapdeb report').",
)
def command(
    source: Path,
    profile_names: tuple[str, ...],
    out_dir: Path,
    jobs: int,
    variant_tests: str,
    builder: str,
    dist: str | None,
    layout: str,
    mode: str,
    variant_make_vars: tuple[str, ...],
    variant_env: tuple[str, ...],
    builder_args: tuple[str, ...],
    keep_work: bool,
    bench_options: Path | None,
) -> None:
    """Convert a copy of SRC_DIR (or FILE.dsc) and build it with one variant per profile.

    The source tree itself is never changed.  The build honours
    DEB_BUILD_OPTIONS (nocheck skips every test, variants' included).
    """
    profiles = _resolve_profiles(profile_names, host_arch())
    if bench_options is not None:
        bench_setting(bench_options, "")  # a missing or misspelt options file fails now, not later
    if dist is not None:
        builder_args = (*_dist_args(dist, builder, builder_args), *builder_args)
    job = BuildJob(
        source=source,
        profiles=tuple(profiles),
        out_dir=out_dir,
        jobs=jobs,
        variant_tests=variant_tests,
        builder=builder,
        keep_work=keep_work,
        extra_args=builder_args,
        layout=layout,
        mode=mode,
        variant_make_vars=variant_make_vars,
        variant_env=variant_env,
    )
    console = Console(stderr=True)
    variants = [BASELINE, *(p.level.name for p in profiles)]
    if console.is_terminal:
        display = VariantDisplay(console, variants)
        with display.progress:
            outcome = _run(job, display)
    else:
        outcome = _run(job, None)
    _summary(outcome, profiles)
    if bench_options is not None and outcome.result.changes is not None:
        for line in write_results(outcome.result.changes, bench_options):
            click.echo(f"  {line}")
    if outcome.work_dir is not None:
        click.echo(f"  scratch tree kept in {outcome.work_dir}")


def _dist_args(dist: str, builder: str, builder_args: tuple[str, ...]) -> tuple[str, ...]:
    """--dist as the sbuild argument it is (the builder resolves and checks the name)."""
    if builder != "sbuild":
        raise UsageError(
            f"--dist {dist} chooses the sbuild chroot, but the builder is {builder} "
            "(it builds for this machine's release)",
            hint="add --builder sbuild",
        )
    given = [a for a in builder_args if a in ("-d", "--dist") or a.startswith("--dist=")]
    if given:
        raise UsageError(
            f"--dist {dist} and --sbuild-arg={given[0]} both name the distribution",
            hint="give one of them",
        )
    own_chroot = any(
        a in ("-c", "--chroot") or a.startswith(("--chroot=", "--chroot-mode="))
        for a in builder_args
    )
    if not own_chroot:  # an unknown name fails now, before any conversion work
        check_dist(dist, host_arch(), DEFAULT_CACHE)
    return (f"--dist={dist}",)


def _run(job: BuildJob, display: VariantDisplay | None) -> BuildOutcome:
    try:
        return run_job(job, on_line=display)
    except BuildFailed as err:
        if display is not None:
            display.progress.stop()
        click.echo(f"hwcapdeb: last lines of {err.log}:", err=True)
        for line in err.tail:
            click.echo(f"  | {line}", err=True)
        raise
