"""``hwcapdeb build`` and the dpkg builder, on small real source packages.

Every build here is a real dpkg-buildpackage run (a few seconds each) of a
tiny native package written into tmp_path; the corpus of real Debian
packages is in test_corpus.py.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from hwcapdeb import buildjob
from hwcapdeb.builders import BuildRequest, available_builders, get_builder
from hwcapdeb.builders.dpkg import (
    BuildFailed,
    DpkgBuilder,
    UnmetBuildDependencies,
    build_options,
    split_deps,
)
from hwcapdeb.buildjob import (
    BuildJob,
    Progress,
    VariantBuildFailed,
    parse_progress,
    run_job,
    variant_logs,
)
from hwcapdeb.cli import main
from hwcapdeb.errors import InputError, UsageError

RULES = """\
#!/usr/bin/make -f
export DEB_HOST_MULTIARCH ?= $(shell dpkg-architecture -qDEB_HOST_MULTIARCH)
%:
\tdh $@
"""

MAKEFILE = """\
all: libtiny.so.1
libtiny.so.1: tiny.c
\t$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -shared -Wl,-soname,libtiny.so.1 $(LDFLAGS) -o $@ $<
install:
\tinstall -D -m644 libtiny.so.1 $(DESTDIR)/usr/lib/$(DEB_HOST_MULTIARCH)/libtiny.so.1
clean:
\trm -f libtiny.so.1
"""


def make_source(
    root: Path,
    *,
    build_depends: str = "debhelper-compat (= 13)",
    rules_extra: str = "",
) -> Path:
    """A native one-library source package ``tiny`` 1.0 in ``root/tiny-1.0``."""
    tree = root / "tiny-1.0"
    (tree / "debian" / "source").mkdir(parents=True)
    (tree / "tiny.c").write_text("int tiny_add(int a, int b) { return a + b; }\n")
    (tree / "Makefile").write_text(MAKEFILE)
    (tree / "debian" / "source" / "format").write_text("3.0 (native)\n")
    (tree / "debian" / "changelog").write_text(
        textwrap.dedent(
            """\
            tiny (1.0) unstable; urgency=medium

              * Test package.

             -- Test <test@example.org>  Thu, 01 Jan 2026 00:00:00 +0000
            """
        )
    )
    (tree / "debian" / "control").write_text(
        textwrap.dedent(
            f"""\
            Source: tiny
            Section: libs
            Priority: optional
            Maintainer: Test <test@example.org>
            Build-Depends: {build_depends}
            Standards-Version: 4.6.2
            Rules-Requires-Root: no

            Package: libtiny1
            Architecture: any
            Depends: ${{shlibs:Depends}}, ${{misc:Depends}}
            Description: tiny test library
             A test library.
            """
        )
    )
    rules = tree / "debian" / "rules"
    rules.write_text(RULES + rules_extra)
    rules.chmod(0o755)
    return tree


def snapshot(tree: Path) -> dict[str, str]:
    """Path -> content hash (and mode) of every file below ``tree``, and its parent's names."""
    state = {}
    for path in sorted(tree.rglob("*")):
        rel = str(path.relative_to(tree))
        if path.is_symlink():
            state[rel] = "link:" + os.readlink(path)
        elif path.is_file():
            state[rel] = hashlib.sha256(path.read_bytes()).hexdigest() + oct(path.stat().st_mode)
        else:
            state[rel] = "dir"
    state["<siblings>"] = ",".join(sorted(p.name for p in tree.parent.iterdir()))
    return state


# --- small pieces -----------------------------------------------------------


def deb_listing(deb: Path) -> str:
    """dpkg-deb -c of a built package."""
    return subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout


def test_parse_progress_lines() -> None:
    assert parse_progress("hwcapdeb: x86-64-v3: configure") == Progress("x86-64-v3", "configure")
    assert parse_progress("hwcapdeb: x86-64-v3: failed (see log)") is not None
    assert parse_progress("hwcapdeb: x86-64-v3: failed (see log)").failed  # type: ignore[union-attr]
    assert parse_progress("hwcapdeb: error: something") is None  # the CLI's own messages
    assert parse_progress("make[1]: Entering directory") is None
    assert parse_progress("   dh_auto_build") is None
    # a variant lane wrote while the baseline's configure had not ended its line
    assert parse_progress(
        "checking whether the C compiler works... hwcapdeb: x86-64-v4: build done"
    ) == Progress("x86-64-v4", "build done")
    assert parse_progress("libhwcapdeb: x: y") is None


def test_build_options_merge_parallel_and_nocheck() -> None:
    assert build_options("", jobs=2, nocheck=False) == "parallel=2"
    assert build_options("parallel=8 noopt", jobs=2, nocheck=True) == "noopt parallel=2 nocheck"
    assert build_options("nocheck", jobs=1, nocheck=True) == "nocheck parallel=1"


def test_split_deps_keeps_versions_and_alternatives() -> None:
    text = "libfoo-dev (>= 1.2) bar baz | qux (<< 3) last"
    assert split_deps(text) == ["libfoo-dev (>= 1.2)", "bar", "baz | qux (<< 3)", "last"]


def test_builder_registry() -> None:
    assert "dpkg" in available_builders()
    assert get_builder("dpkg").name == "dpkg"
    with pytest.raises(UsageError, match="unknown builder 'nope'"):
        get_builder("nope")


# --- bad input: one line, exit 2, nothing touched ---------------------------


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["build", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_source_without_debian_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "src").mkdir()
    code, _out, err = _cli([str(tmp_path / "src"), "--profile", "x86-64-v3"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "has no debian/ directory" in err
    assert err.startswith("hwcapdeb: error: ")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("this is not a dsc\n", "not a Debian source control file"),
        (
            "Format: 3.0 (quilt)\nSource: gone\nVersion: 1.0-1\nFiles:\n"
            " 0123456789abcdef0123456789abcdef 10 gone_1.0.orig.tar.gz\n",
            "lists files that are not beside it: gone_1.0.orig.tar.gz",
        ),
    ],
    ids=["garbage", "missing-files"],
)
def test_unusable_dsc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    dsc = tmp_path / "x.dsc"
    dsc.write_text(content)
    code, _out, err = _cli([str(dsc), "--profile", "x86-64-v3", "--out", str(tmp_path)], capsys)
    assert code == 2
    assert err.count("\n") == 1 and message in err
    assert dsc.read_text() == content


def test_missing_dsc_and_unreadable_dsc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _out, err = _cli([str(tmp_path / "none.dsc"), "--profile", "x86-64-v3"], capsys)
    assert code == 2 and "does not exist" in err and err.count("\n") == 1
    with pytest.raises(InputError, match="cannot read"):
        buildjob.read_dsc(tmp_path)  # a directory: open() fails like an unreadable file


def test_unknown_profile(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = make_source(tmp_path)
    before = snapshot(tree)
    code, _out, err = _cli([str(tree), "--profile", "x86-64-v9"], capsys)
    assert code == 2
    assert err.count("\n") == 1 and "unknown profile 'x86-64-v9'" in err
    assert snapshot(tree) == before


def test_unknown_builder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = make_source(tmp_path)
    code, _out, err = _cli([str(tree), "--profile", "x86-64-v3", "--builder", "nope"], capsys)
    assert code == 2 and err.count("\n") == 1 and "nope" in err


def test_missing_tool_names_its_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PATH holding every program of this machine except dpkg-buildpackage.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for directory in ("/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"):
        for program in Path(directory).glob("*"):
            link = bindir / program.name
            if program.name != "dpkg-buildpackage" and not link.exists():
                link.symlink_to(program)
    monkeypatch.setenv("PATH", str(bindir))
    tree = make_source(tmp_path)
    before = snapshot(tree)
    code, _out, err = _cli([str(tree), "--profile", "x86-64-v3"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "'dpkg-buildpackage' was not found" in err and "apt-get install dpkg-dev" in err
    assert snapshot(tree) == before


# --- real builds of the tiny package ----------------------------------------


def test_dpkg_builder_builds_and_collects(tmp_path: Path) -> None:
    tree = make_source(tmp_path / "src")
    lines: list[str] = []
    out = tmp_path / "out"
    result = DpkgBuilder().build(BuildRequest(tree, out, jobs=2, on_line=lines.append))
    assert result.changes == out / "tiny_1.0_amd64.changes"
    names = sorted(p.name for p in result.debs)
    assert "libtiny1_1.0_amd64.deb" in names
    assert all(p.is_file() for p in result.debs)
    assert (out / "tiny_1.0_amd64.buildinfo").is_file()
    assert result.log.is_file() and "dh_builddeb" in result.log.read_text()
    assert any("dh_builddeb" in line for line in lines)
    # Nothing left beside the tree: everything the .changes lists was moved.
    assert sorted(p.name for p in tree.parent.iterdir()) == ["tiny-1.0"]
    listing = deb_listing(out / "libtiny1_1.0_amd64.deb")
    assert "/usr/lib/x86_64-linux-gnu/libtiny.so.1" in listing


def test_build_job_works_on_a_copy(tmp_path: Path) -> None:
    tree = make_source(tmp_path / "src")
    before = snapshot(tree)
    outcome = run_job(
        BuildJob(source=tree, profiles=(), out_dir=tmp_path / "out", jobs=2, convert=False)
    )
    assert outcome.source == "tiny" and outcome.version == "1.0"
    assert (tmp_path / "out" / "libtiny1_1.0_amd64.deb").is_file()
    assert snapshot(tree) == before  # not even a debian/files or a .debhelper dir


def test_build_job_from_dsc(tmp_path: Path) -> None:
    tree = make_source(tmp_path / "src")
    subprocess.run(
        ["dpkg-source", "-b", tree.name], cwd=tree.parent, check=True, capture_output=True
    )
    dsc = tree.parent / "tiny_1.0.dsc"
    outcome = run_job(
        BuildJob(source=dsc, profiles=(), out_dir=tmp_path / "out", jobs=2, convert=False)
    )
    assert outcome.result.changes is not None and outcome.result.changes.is_file()


def test_missing_build_dependency(tmp_path: Path) -> None:
    tree = make_source(
        tmp_path, build_depends="debhelper-compat (= 13), hwcapdeb-no-such-pkg (>= 2)"
    )
    with pytest.raises(UnmetBuildDependencies) as caught:
        run_job(BuildJob(source=tree, profiles=(), out_dir=tmp_path / "out", convert=False))
    assert caught.value.deps == ["hwcapdeb-no-such-pkg (>= 2)"]
    message = str(caught.value)
    assert "\n" not in message
    assert "unmet build dependencies: hwcapdeb-no-such-pkg (>= 2)" in message
    assert f"apt-get build-dep {tree}" in message


FAILING_VARIANT = """
override_dh_auto_build:
\tdh_auto_build
\t@echo "hwcapdeb: x86-64-v2: build started"
\t@echo "hwcapdeb: x86-64-v2: tests ran natively"
\t@echo "hwcapdeb: x86-64-v2: build done"
\t@echo "hwcapdeb: x86-64-v3: build started"
\t@echo "tiny.c:1: error: marker-of-the-failure" >&2
\t@exit 1
"""


def test_failed_build_names_the_variant(tmp_path: Path) -> None:
    tree = make_source(tmp_path, rules_extra=FAILING_VARIANT)
    out = tmp_path / "out"
    with pytest.raises(VariantBuildFailed) as caught:
        run_job(BuildJob(source=tree, profiles=(), out_dir=out, jobs=2, convert=False))
    err = caught.value
    assert err.variant == "x86-64-v3"
    assert "variant x86-64-v3 failed" in str(err) and "\n" not in str(err)
    assert any("marker-of-the-failure" in line for line in err.tail)
    assert err.build_log == out / "tiny_1.0_amd64.build" and err.build_log.is_file()


AVX2_REFUSED = """\
#ifdef __AVX2__
#error "tiny refuses AVX2: marker-of-the-failure"
#endif
int tiny_add(int a, int b) { return a + b; }
"""


def test_cli_failure_names_variant_shows_tail_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Converted for real; the x86-64-v3 variant's compile fails as xxhash's does.
    tree = make_source(tmp_path / "src")
    (tree / "tiny.c").write_text(AVX2_REFUSED)
    before = snapshot(tree)
    out = tmp_path / "o"
    code, stdout, err = _cli([str(tree), "-p", "x86-64-v2,x86-64-v3", "--out", str(out)], capsys)
    assert code == 2 and stdout == ""
    lines = err.splitlines()
    assert lines[-1].startswith("hwcapdeb: error: variant x86-64-v3 failed")
    assert f"its log is {out / 'tiny_1.0.x86-64-v3.log'}" in lines[-1]
    assert any("marker-of-the-failure" in line for line in lines[:-1])
    assert (out / "tiny_1.0.x86-64-v2.log").is_file()
    assert snapshot(tree) == before


def test_cli_converts_a_copy_and_builds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tree = make_source(tmp_path / "src")
    before = snapshot(tree)
    out = tmp_path / "o"
    code, stdout, err = _cli([str(tree), "-p", "x86-64-v2,x86-64-v3", "--out", str(out)], capsys)
    assert code == 0 and err == ""
    assert stdout.splitlines()[0].startswith("built tiny 1.0 with x86-64-v2, x86-64-v3 in ")
    assert "  libtiny1_1.0_amd64.deb" in stdout.splitlines()
    assert snapshot(tree) == before  # converted and built in a scratch copy
    listing = deb_listing(out / "libtiny1_1.0_amd64.deb")
    for level in ("x86-64-v2", "x86-64-v3"):
        assert f"/usr/lib/x86_64-linux-gnu/glibc-hwcaps/{level}/libtiny.so.1" in listing
        assert (out / f"tiny_1.0.{level}.log").is_file()
    log = (out / "tiny_1.0_amd64.build").read_text()
    assert "hwcapdeb: x86-64-v3: build done" in log


SHARED_RULES_GUARD = """\
#ifndef TINY_SHARED_RULES
#error "built without the maintainer's shared rules"
#endif
int tiny_add(int a, int b) { return a + b; }
"""


def test_symlinked_rules_convert_build_revert(tmp_path: Path) -> None:
    """debian/rules a link to a shared rules file: converted in place, built by
    dpkg-buildpackage with no hwcapdeb on PATH, every variant compiled with the
    shared rules' flags, then reverted to the very same link."""
    tree = make_source(
        tmp_path / "src", rules_extra="export DEB_CFLAGS_MAINT_APPEND = -DTINY_SHARED_RULES\n"
    )
    (tree / "tiny.c").write_text(SHARED_RULES_GUARD)
    (tree / "packaging").mkdir()
    (tree / "debian" / "rules").rename(tree / "packaging" / "tiny.rules")
    (tree / "debian" / "rules").symlink_to("../packaging/tiny.rules")
    before = snapshot(tree)
    assert main(["convert", str(tree), "-p", "x86-64-v2,x86-64-v3", "--mode", "embed"]) == 0
    assert not (tree / "debian" / "rules").is_symlink()
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = "/usr/sbin:/usr/bin:/sbin:/bin"
    built = subprocess.run(
        ["dpkg-buildpackage", "-us", "-uc", "-b"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    log = built.stdout + built.stderr
    assert built.returncode == 0, log[-4000:]
    assert "hwcapdeb: x86-64-v3: build done" in log
    listing = deb_listing(tree.parent / "libtiny1_1.0_amd64.deb")
    for level in ("x86-64-v2", "x86-64-v3"):
        assert f"/usr/lib/x86_64-linux-gnu/glibc-hwcaps/{level}/libtiny.so.1" in listing
    assert main(["revert", str(tree)]) == 0
    after = snapshot(tree)
    assert os.readlink(tree / "debian" / "rules") == "../packaging/tiny.rules"
    # what was there is back exactly; only the build's own residue is new
    assert {k: after.get(k) for k in before if k != "<siblings>"} == {
        k: v for k, v in before.items() if k != "<siblings>"
    }
    assert not (tree / "debian" / "hwcapdeb").exists()


def test_build_failure_without_progress_lines(tmp_path: Path) -> None:
    tree = make_source(tmp_path, rules_extra="override_dh_auto_build:\n\t@exit 3\n")
    with pytest.raises(BuildFailed) as caught:
        run_job(BuildJob(source=tree, profiles=(), out_dir=tmp_path / "out", convert=False))
    assert "the build failed" in str(caught.value)


def test_failed_variant_from_progress_lines(tmp_path: Path) -> None:
    log = tmp_path / "x.build"
    variants = ["x86-64-v2", "x86-64-v3"]
    log.write_text(
        "hwcapdeb: x86-64-v2: build started (log debian/hwcapdeb/logs/x86-64-v2.log)\n"
        "hwcapdeb: x86-64-v2: build done\n"
        "hwcapdeb: x86-64-v2: load check passed under qemu-x86_64 -cpu Nehalem\n"
        "dh_shlibdeps: error: something unrelated to variants\n"
    )
    assert buildjob.failed_variant(log, variants) is None
    log.write_text(
        "hwcapdeb: x86-64-v2: build done\n"
        "hwcapdeb: error: x86-64-v3: libfoo.so.1 does not load under qemu-x86_64 -cpu Haswell\n"
    )
    assert buildjob.failed_variant(log, variants) == "x86-64-v3"
    log.write_text("hwcapdeb: x86-64-v3: build started\nmake: *** Error 2\n")
    assert buildjob.failed_variant(log, variants) == "x86-64-v3"


def test_variant_display_follows_the_progress_lines() -> None:
    import io

    from rich.console import Console

    from hwcapdeb.commands.build import VariantDisplay

    display = VariantDisplay(Console(file=io.StringIO()), ["baseline", "x86-64-v2", "x86-64-v3"])
    tasks = {t.fields["variant"]: t for t in display.progress.tasks}
    assert tasks["baseline"].description.startswith("building")
    assert tasks["x86-64-v3"].description == "waiting" and not tasks["x86-64-v3"].finished
    for line in (
        "make[1]: Entering directory '/build'",
        "hwcapdeb: x86-64-v2: build started (debian/rules install-arch, log x.log)",
        "   dh_auto_build -a",
        "hwcapdeb: x86-64-v2: build done",
        "hwcapdeb: x86-64-v3: build started (debian/rules install-arch, log y.log)",
    ):
        display(line)
    assert tasks["baseline"].description == "dh_auto_build" and not tasks["baseline"].finished
    assert tasks["x86-64-v2"].finished
    assert tasks["x86-64-v3"].description.startswith("build started")
    assert not tasks["x86-64-v3"].finished
    display("hwcapdeb: x86-64-v3: build done")
    display("hwcapdeb: x86-64-v3: installed 1 libraries into libtiny1")
    assert tasks["baseline"].finished and tasks["x86-64-v3"].description == "build done"
    display("dpkg-deb: building package 'libtiny1' in '../libtiny1_1.0_amd64.deb'.")
    assert tasks["packages"].description == "building libtiny1"


def test_variant_logs_include_the_first_attempt_of_a_retried_variant(tmp_path: Path) -> None:
    logs = tmp_path / "debian" / "hwcapdeb" / "logs"
    logs.mkdir(parents=True)
    for name in ("x86-64-v2.log", "x86-64-v3.log", "x86-64-v3.log.1", "prepare.log"):
        (logs / name).write_text(name)
    found = variant_logs(tmp_path)
    assert sorted(found) == ["prepare", "x86-64-v2", "x86-64-v3", "x86-64-v3.first-attempt"]
    assert found["x86-64-v3.first-attempt"].name == "x86-64-v3.log.1"
