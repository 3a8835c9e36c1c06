"""hwcapdeb.bench.ld_debug: which files LD_DEBUG=libs says the loader mapped.

Synthetic logs pin the parser's rules; one real log of the host's loader
checks that the format it parses is the one glibc writes.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from hwcapdeb.bench.ld_debug import loaded_files, same_file
from hwcapdeb.glibc_rules import loader_env

V3 = "/p/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libhw.so.1"


def _log(*lines: str) -> str:
    return "\n".join(f"     4711:\t{line}" for line in lines) + "\n"


def test_calling_init_names_the_mapped_file() -> None:
    text = _log(
        "find library=libhw.so.1 [0]; searching",
        " search path=/p/usr/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3:/p/usr/lib",
        "  trying file=" + V3,
        "",
        "find library=libc.so.6 [0]; searching",
        "  trying file=/p/usr/lib/libc.so.6",
        "  trying file=/lib/x86_64-linux-gnu/libc.so.6",
        "",
        "calling init: /lib/x86_64-linux-gnu/libc.so.6",
        "",
        "calling init: " + V3,
        "",
        "initialize program: prog",
    )
    # the last "trying" of each search block is the file found; init lines add nothing new
    assert loaded_files(text) == [Path(V3), Path("/lib/x86_64-linux-gnu/libc.so.6")]


def test_a_library_that_dies_before_its_initialiser_still_counts() -> None:
    """A variant that crashes (SIGILL) in its constructor never logs "calling init"."""
    text = _log("find library=libhw.so.1 [0]; searching", "  trying file=" + V3, "")
    assert loaded_files(text) == [Path(V3)]


def test_other_lines_and_empty_logs() -> None:
    assert loaded_files("") == []
    assert loaded_files("not a loader line\ncalling init: /x\n") == []  # no pid prefix
    assert loaded_files(_log("calling init: /a", "calling init: /a")) == [Path("/a")]


def test_same_file_follows_links(tmp_path: Path) -> None:
    real = tmp_path / "libhw.so.1.0"
    real.write_bytes(b"x")
    (tmp_path / "libhw.so.1").symlink_to(real.name)
    assert same_file(tmp_path / "libhw.so.1", real)
    assert not same_file(tmp_path / "missing", real)


@pytest.mark.skipif(shutil.which("true") is None, reason="needs true(1)")
def test_real_loader_log(tmp_path: Path) -> None:
    base = tmp_path / "ld"
    done = subprocess.run(["true"], env=loader_env({"LD_DEBUG": "libs",
                                                    "LD_DEBUG_OUTPUT": str(base)}), check=False)
    logs = list(tmp_path.glob("ld.*"))
    if done.returncode != 0 or not logs:
        pytest.skip("this loader writes no LD_DEBUG output (secure mode?)")
    names = {p.name for p in loaded_files(logs[0].read_text())}
    assert "libc.so.6" in names
