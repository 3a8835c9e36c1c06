"""Acceptance: real source packages (this machine's release), converted, built, loaded.

For each package of the corpus: ``apt-get source`` (cached, see tests/corpus.py),
``hwcapdeb build`` with x86-64-v2, -v3 and -v4 (dpkg-buildpackage), unpack the
.debs, and ask this machine's ld.so which file it loads for each library's
SONAME, unmasked (x86-64-v4) and with GLIBC_TUNABLES masks that take the CPU
down to x86-64-v3, -v2 and the baseline.  The x86-64-v3 build must differ from
the baseline in code (.text bytes).

CI builds the corpus with ``nocheck`` except QUICK_TESTS, whose test suites
run against every variant; ``HWCAPDEB_FULL_CORPUS=1`` runs all test suites.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from hwcapdeb.buildjob import FIRST_ATTEMPT, BuildJob, run_job
from hwcapdeb.elf import is_elf, read_elf
from hwcapdeb.glibc_rules import isa_needed_rank
from hwcapdeb.probe import probe
from hwcapdeb.profiles import ProfileRegistry, architecture
from tests import corpus

LOADER = "/lib64/ld-linux-x86-64.so.2"
LEVELS = ("x86-64-v2", "x86-64-v3", "x86-64-v4")
AMD64 = architecture("amd64")

#: level the CPU is taken down to -> GLIBC_TUNABLES hwcaps mask that does it
MASKS: dict[str, str | None] = {
    "x86-64-v4": None,
    "x86-64-v3": "-AVX512F",
    "x86-64-v2": "-AVX2",
    "baseline": "-SSE4_2",
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(LOADER).exists(), reason="needs the amd64 loader"),
]


def _env(mask: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "GLIBC_TUNABLES")}
    if mask:
        env["GLIBC_TUNABLES"] = f"glibc.cpu.hwcaps={mask}"
    return env


def top_supported_level(mask: str | None, loader: str | Path = LOADER) -> str:
    """The highest glibc-hwcaps level ``loader --help`` calls supported under ``mask``."""
    text = subprocess.run(
        [loader, "--help"], env=_env(mask), capture_output=True, text=True, check=True
    ).stdout
    for line in text.splitlines():
        name, _, rest = line.strip().partition(" ")
        if name.startswith("x86-64-v") and "supported" in rest:
            return name
    return "baseline"


def loaded_path(libdir: Path, soname: str, mask: str | None) -> Path:
    """The file the real loader maps for ``soname`` with ``libdir`` first on the path."""
    argv = [LOADER, "--library-path", str(libdir), "--preload", soname, "--list", "/bin/true"]
    result = subprocess.run(argv, env=_env(mask), capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{' '.join(argv)} (mask {mask}): {result.stderr.strip()}"
    for line in result.stdout.splitlines():
        name, arrow, rest = line.strip().partition(" => ")
        if name == soname and arrow:
            return Path(rest.rsplit(" (", 1)[0])
    raise AssertionError(f"ld.so did not list {soname}:\n{result.stdout}")


def text_bytes(path: Path) -> bytes:
    with path.open("rb") as fh:
        section = ELFFile(fh).get_section_by_name(".text")
        assert section is not None, f"{path} has no .text"
        return bytes(section.data())


def unpack(debs: tuple[Path, ...], root: Path) -> None:
    for deb in debs:
        if deb.suffix == ".deb" and "-dbgsym_" not in deb.name:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)


def libraries_with_variants(root: Path) -> list[tuple[Path, str]]:
    """(library directory, SONAME) for every baseline library that has hwcaps variants."""
    found: list[tuple[Path, str]] = []
    for hwcaps in sorted(root.rglob("glibc-hwcaps")):
        libdir = hwcaps.parent
        sonames = {
            facts.soname
            for path in libdir.iterdir()
            if path.is_file() and not path.is_symlink() and is_elf(path)
            for facts in [read_elf(path, with_exports=False)]
            if facts.soname
        }
        for soname in sorted(sonames):
            if any((hwcaps / level / soname).exists() for level in LEVELS):
                found.append((libdir, soname))
    return found


def with_test_suite(name: str) -> bool:
    return corpus.full_corpus() or name in corpus.QUICK_TESTS


@pytest.fixture(scope="module")
def machine_levels() -> None:
    # The masks must take this CPU exactly to each level, or the test proves nothing.
    for level, mask in MASKS.items():
        top = top_supported_level(mask)
        if top != level:
            pytest.skip(f"this CPU reaches {top} with mask {mask}, not {level} (needs AVX-512)")


@pytest.mark.parametrize("name", corpus.PACKAGES)
def test_corpus_package(name: str, tmp_path: Path, machine_levels: None) -> None:
    dsc = corpus.fetch(name)
    profiles = tuple(ProfileRegistry().resolve_many(list(LEVELS), "amd64"))
    out = tmp_path / "out"
    run_tests = with_test_suite(name)
    outcome = run_job(
        BuildJob(
            source=dsc,
            profiles=profiles,
            out_dir=out,
            jobs=2,
            variant_tests="auto" if run_tests else "none",
            nocheck=not run_tests,
            variant_env=corpus.VARIANT_ENV.get(name, ()),
        )
    )
    root = tmp_path / "root"
    unpack(outcome.result.debs, root)
    libraries = libraries_with_variants(root)
    assert libraries, f"no library of {name} has glibc-hwcaps variants"
    for libdir, soname in libraries:
        for level in LEVELS:
            variant = libdir / "glibc-hwcaps" / level / soname
            assert variant.exists(), f"{variant.relative_to(root)} missing"
        for level, mask in MASKS.items():
            expected = libdir / soname
            if level != "baseline":
                expected = libdir / "glibc-hwcaps" / level / soname
            chosen = loaded_path(libdir, soname, mask)
            assert os.path.normpath(chosen) == os.path.normpath(expected), (
                f"{soname} with mask {mask}: loader chose {chosen}, expected {expected}"
            )
        for level in LEVELS:
            # the marker names exactly the level: one above it makes glibc refuse the
            # file on CPUs of that level (a package's own -mavx2 dispatch objects did)
            facts = read_elf((libdir / "glibc-hwcaps" / level / soname).resolve())
            assert isa_needed_rank(facts.isa_needed) == AMD64.level(level).rank, (
                f"{soname} {level}: ISA marker {facts.isa_needed_names}"
            )
        for level in ("x86-64-v2", "x86-64-v3"):
            # the real loader, on an emulated CPU of exactly that level, loads the variant
            result = probe(soname, library_path=[libdir], qemu_cpu=AMD64.level(level).qemu_cpu)
            expected = libdir / "glibc-hwcaps" / level / soname
            assert result.error is None and result.path is not None, (
                f"{soname} under qemu {AMD64.level(level).qemu_cpu}: {result.error}"
            )
            assert os.path.normpath(result.path) == os.path.normpath(expected)
        v3 = (libdir / "glibc-hwcaps" / "x86-64-v3" / soname).resolve()
        assert text_bytes(v3) != text_bytes((libdir / soname).resolve()), (
            f"{soname}: the x86-64-v3 build has the same code as the baseline"
        )
    if run_tests:
        _assert_variant_tests_ran(outcome.result.log, outcome.variant_logs)
    _assert_no_static_archives_in_first_attempts(outcome.result.log, outcome.variant_logs)


def _assert_no_static_archives_in_first_attempts(log: Path, variant_logs: dict[str, Path]) -> None:
    # A variant's first attempt defaults libtool to --disable-static (an autoconf
    # site file).  A site file autoconf refused would be hidden by the retry
    # without it, so the first attempts' logs are read too; a final log may show
    # static archives only when the variant was retried.
    text = log.read_text(errors="replace")
    for name, variant_log in variant_logs.items():
        configure = variant_log.read_text(errors="replace")
        assert "failed to load site script" not in configure, f"{name}: {variant_log}"
        if name.endswith(FIRST_ATTEMPT) or f"hwcapdeb: {name}: build retried" in text:
            continue
        assert "checking whether to build static libraries... yes" not in configure, name


def _assert_variant_tests_ran(log: Path, variant_logs: dict[str, Path]) -> None:
    # The generated rules run each variant's build with the package's tests
    # enabled when this CPU runs the level, and say so in the build log.
    text = log.read_text(errors="replace")
    for level in LEVELS:
        assert f"hwcapdeb: {level}: tests ran natively" in text, f"{level} was not tested ({log})"
        assert level in variant_logs and variant_logs[level].stat().st_size > 0
