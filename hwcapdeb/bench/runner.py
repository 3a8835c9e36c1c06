"""One run of COMMAND: wall and CPU time, peak RSS (GNU time), exit status, ``--score``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hwcapdeb.errors import ExternalCommandError, UsageError
from hwcapdeb.tools import find_tool


@dataclass(frozen=True)
class Run:
    """One execution of COMMAND."""

    wall: float  # seconds
    cpu: float  # user + system seconds of the child
    maxrss_kib: int  # ru_maxrss of the child (Linux: KiB)
    exit_code: int | None  # None if killed by a signal
    signal: int | None
    stderr_head: str
    score: float | None = None  # the number --score found in the output

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        if self.signal is not None:
            name = signal.Signals(self.signal).name if self.signal in signal.valid_signals() \
                else str(self.signal)
            return f"crashed with {name}"
        tail = f": {self.stderr_head}" if self.stderr_head else ""
        return f"exited with status {self.exit_code}{tail}"


#: GNU time's report; ru_maxrss must come from a parent with a small footprint: the
#: kernel carries the high-water mark across exec, so a child forked from Python
#: would report at least Python's own RSS
_RUSAGE_FORMAT = "hwcapdeb-rusage %M %x"
_SIGNALLED = re.compile(r"^Command terminated by signal (\d+)")


def _parse_rusage(text: str) -> tuple[int, int | None]:
    """(maxrss KiB, signal or None) from GNU time's -o file."""
    maxrss, sig = 0, None
    for line in text.splitlines():
        if m := _SIGNALLED.match(line):
            sig = int(m.group(1))
        elif line.startswith("hwcapdeb-rusage "):
            maxrss = int(line.split()[1])
    return maxrss, sig


def _score(pattern: re.Pattern[str], texts: Sequence[str]) -> float | None:
    """The last match of ``pattern`` (its first group, or all of it) in stdout, else stderr."""
    for text in texts:
        # progress displays redraw a line with \r: the last match is the final figure
        matches = list(pattern.finditer(text))
        if matches:
            m = matches[-1]
            raw = m.group(1) if pattern.groups else m.group(0)
            try:
                return float(raw.replace(",", ""))
            except ValueError:
                raise UsageError(f"--score matched '{raw}', which is not a number") from None
    return None


def run_once(argv: Sequence[str], *, env: dict[str, str], stdout: int | None,
             timeout: float, scratch: Path, timed: bool = True,
             score: re.Pattern[str] | None = None) -> tuple[Run, int]:
    """Run ``argv`` once; returns the run and the pid of ``argv`` itself.

    ``timed`` runs it under GNU time (for the peak RSS): wall time is taken
    around fork/exec/wait (GNU time's own start-up is the same for every
    variant), CPU time from wait4.  Untimed, ``argv`` is the direct child, so
    its pid is known (LD_DEBUG_OUTPUT names files by pid) and maxrss is 0.
    """
    err_path, usage_path, out_path = scratch / "stderr", scratch / "rusage", scratch / "stdout"
    usage_path.unlink(missing_ok=True)
    timer = [find_tool("time"), "-f", _RUSAGE_FORMAT, "-o", str(usage_path), "--"] if timed else []
    with err_path.open("w+b") as err, out_path.open("w+b") as out:
        start = time.perf_counter()
        try:
            proc = subprocess.Popen([*timer, *argv], stdout=out if score else stdout, stderr=err,
                                    stdin=subprocess.DEVNULL, env=env)
        except OSError as exc:
            raise ExternalCommandError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                proc.returncode = -9
                raise ExternalCommandError(
                    f"COMMAND ran longer than {timeout:.0f}s",
                    hint="use a shorter workload or raise --timeout",
                )
            time.sleep(0.0005)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        err_text = err.read(1 << 20).decode("utf-8", "replace")
        out.seek(0)
        out_text = out.read(1 << 20).decode("utf-8", "replace") if score else ""
    lines = [ln.strip() for ln in err_text.splitlines()]
    maxrss, sig = _parse_rusage(usage_path.read_text() if usage_path.exists() else "")
    head = next((ln for ln in lines if ln), "")
    code = None if sig is not None else (
        os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
    )
    if sig is None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
    found = _score(score, (out_text, err_text)) if score else None
    run = Run(wall, usage.ru_utime + usage.ru_stime, maxrss, code, sig, head, found)
    return run, proc.pid
