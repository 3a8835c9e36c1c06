"""The ``dpkg`` builder: dpkg-buildpackage on the host, in an unpacked tree.

It builds binary-only (``-B``: architecture-dependent packages, the only ones
variants change) unsigned, with ``DEB_BUILD_OPTIONS=parallel=N``, streams the
output to a log file and the caller's ``on_line``, then moves the .changes,
.buildinfo and every file the .changes lists into the output directory.
Build-dependencies are checked first (dpkg-checkbuilddeps) so a missing one is
a one-line error naming it instead of a failed build.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from debian.changelog import Changelog, ChangelogParseError
from debian.deb822 import Changes

from hwcapdeb.builders import BuildRequest, BuildResult
from hwcapdeb.errors import BuildError, InputError, MissingToolError
from hwcapdeb.tools import find_tool, run
from hwcapdeb.validate import read_bytes

#: how many lines of a failed build's log the error shows
TAIL_LINES = 25

_UNMET = re.compile(r"Unmet build dependencies: (?P<deps>.*)$", re.MULTILINE)
_CONFLICTS = re.compile(r"Build conflicts: (?P<deps>.*)$", re.MULTILINE)


class BuildFailed(BuildError):
    """dpkg-buildpackage (or another builder) exited non-zero; carries its log."""

    def __init__(self, message: str, *, log: Path, tail: list[str], hint: str | None = None):
        super().__init__(message, hint=hint)
        self.log = log
        self.tail = tail


class UnmetBuildDependencies(MissingToolError):
    """Build-dependencies are missing; ``deps`` lists them as dpkg-checkbuilddeps does."""

    def __init__(self, deps: list[str], *, conflicts: list[str], hint: str | None = None):
        parts = []
        if deps:
            parts.append("unmet build dependencies: " + ", ".join(deps))
        if conflicts:
            parts.append("conflicting packages installed: " + ", ".join(conflicts))
        super().__init__("; ".join(parts), hint=hint)
        self.deps = deps
        self.conflicts = conflicts


def _first_line(err: Exception) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:200] if lines else type(err).__name__


def source_identity(tree: Path) -> tuple[str, str]:
    """(source name, version without epoch) from ``tree``/debian/changelog."""
    path = tree / "debian" / "changelog"
    text = read_bytes(path, what="changelog").decode("utf-8", errors="replace")
    try:
        changelog = Changelog(text, max_blocks=1, strict=True)
    except (ChangelogParseError, ValueError) as err:  # ValueError: an invalid version
        raise InputError(f"{path}: not a valid changelog ({_first_line(err)})") from None
    if not changelog.package or changelog.version is None:
        raise InputError(f"{path}: no source name or version in its first entry")
    version = changelog.version
    return changelog.package, version.full_version.split(":", 1)[-1]


def host_arch(env: Mapping[str, str] | None = None) -> str:
    """DEB_HOST_ARCH as dpkg-architecture computes it (honours a cross environment)."""
    result = run(["dpkg-architecture", "-qDEB_HOST_ARCH"], env=env)
    return result.stdout.strip()


def split_deps(text: str) -> list[str]:
    """Split dpkg-checkbuilddeps' space-joined list into the relations it names.

    It prints relations separated by spaces (no commas), each a name followed
    by an optional ``(op version)``, alternatives joined with ``|``.
    """
    deps: list[str] = []
    depth = 0
    for token in text.split():
        attach = depth > 0 or token[0] in "([|" or (deps and deps[-1].endswith("|"))
        if attach and deps:
            deps[-1] = f"{deps[-1]} {token}"
        else:
            deps.append(token)
        depth += token.count("(") + token.count("[") - token.count(")") - token.count("]")
        depth = max(depth, 0)
    return deps


def build_options(current: str, *, jobs: int, nocheck: bool) -> str:
    """DEB_BUILD_OPTIONS with our parallel=N (and nocheck) merged into the user's."""
    tokens = [t for t in current.split() if not t.startswith("parallel=")]
    tokens.append(f"parallel={jobs}")
    if nocheck and "nocheck" not in tokens:
        tokens.append("nocheck")
    return " ".join(tokens)


def log_tail(lines: deque[str] | list[str], count: int = TAIL_LINES) -> list[str]:
    return list(lines)[-count:]


class DpkgBuilder:
    """Builds with dpkg-buildpackage on this machine (build-dependencies must be installed)."""

    name = "dpkg"

    def __init__(self, build_type: str = "any") -> None:
        self.build_type = build_type  # dpkg-buildpackage --build=...

    def check(self) -> None:
        find_tool("dpkg-buildpackage")
        find_tool("dpkg-checkbuilddeps")
        find_tool("dpkg-source")
        if os.geteuid() != 0:
            find_tool("fakeroot")

    def check_build_deps(self, tree: Path, env: Mapping[str, str] | None = None) -> None:
        """Raise UnmetBuildDependencies naming what dpkg-checkbuilddeps misses."""
        argv = ["dpkg-checkbuilddeps"]
        if self.build_type == "any":
            argv.append("-B")
        elif self.build_type == "all":
            argv.append("-A")
        result = run(argv, cwd=tree, env=env, check=False)
        if result.returncode == 0:
            return
        unmet = _UNMET.search(result.stderr)
        conflicts = _CONFLICTS.search(result.stderr)
        if not unmet and not conflicts:
            first = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise BuildError(f"dpkg-checkbuilddeps failed in {tree}: {first}")
        raise UnmetBuildDependencies(
            split_deps(unmet.group("deps")) if unmet else [],
            conflicts=split_deps(conflicts.group("deps")) if conflicts else [],
            hint=f"install them with 'apt-get build-dep {tree}'",
        )

    def build(self, request: BuildRequest) -> BuildResult:
        self.check()
        request.out_dir.mkdir(parents=True, exist_ok=True)
        if request.source.is_file():  # a .dsc: unpack it next to nothing of the user's
            with tempfile.TemporaryDirectory(prefix="hwcapdeb-dpkg-") as scratch:
                tree = Path(scratch) / "src"
                run(["dpkg-source", "--no-copy", "-x", request.source.resolve(), tree])
                return self._build_tree(tree, request)
        return self._build_tree(request.source, request)

    def _environment(self, request: BuildRequest) -> dict[str, str]:
        env = dict(os.environ)
        env.update(request.env)
        jobs = request.jobs or os.cpu_count() or 1
        env["DEB_BUILD_OPTIONS"] = build_options(
            env.get("DEB_BUILD_OPTIONS", ""), jobs=jobs, nocheck=request.nocheck
        )
        env.setdefault("LC_ALL", "C.UTF-8")  # parseable, untranslated messages
        return env

    def _build_tree(self, tree: Path, request: BuildRequest) -> BuildResult:
        tree = tree.resolve()
        if not (tree / "debian" / "control").is_file():
            raise InputError(f"{tree} has no debian/control", hint="pass an unpacked source tree")
        env = self._environment(request)
        self.check_build_deps(tree, env)
        source, version = source_identity(tree)
        arch = host_arch(env)
        log = request.log or request.out_dir / f"{source}_{version}_{arch}.build"
        argv = [
            find_tool("dpkg-buildpackage"),
            "-us",
            "-uc",
            f"--build={self.build_type}",
            *request.extra_args,
        ]
        returncode, tail = stream(argv, cwd=tree, env=env, log=log, on_line=request.on_line)
        if returncode != 0:
            raise BuildFailed(
                f"dpkg-buildpackage failed for {source} {version} (exit {returncode})",
                log=log,
                tail=tail,
                hint=f"the full log is {log}",
            )
        changes_name = f"{source}_{version}_{arch}.changes"
        changes = tree.parent / changes_name
        if not changes.is_file():
            raise BuildError(f"dpkg-buildpackage left no {changes_name} in {tree.parent}")
        return collect(changes, request.out_dir, log)


def stream(
    argv: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    on_line: Callable[[str], None] | None,
) -> tuple[int, list[str]]:
    """Run ``argv``, stdout and stderr into ``log`` line by line; (exit code, last lines)."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w", encoding="utf-8") as fh:
        fh.write("+ " + " ".join(argv) + "\n")
        fh.flush()
        # A new session so an interrupted hwcapdeb can kill the whole build tree.
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
        )
        previous = _on_sigterm_exit()
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                fh.write(line)
                text = line.rstrip("\n")
                tail.append(text)
                if on_line is not None:
                    on_line(text)
            returncode = proc.wait()
        except BaseException:
            _kill_group(proc)
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
    return returncode, list(tail)


def _on_sigterm_exit() -> Any:
    """Make SIGTERM raise SystemExit, so the build's process group is killed too.

    The build runs in its own session (so a terminal's Ctrl-C reaches us
    first); without this a terminated hwcapdeb would leave it running.
    """
    if threading.current_thread() is not threading.main_thread():
        return None

    def _exit(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, _exit)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def collect(changes: Path, out_dir: Path, log: Path) -> BuildResult:
    """Move ``changes`` and every file it lists into ``out_dir``."""
    with changes.open(encoding="utf-8") as fh:
        doc = Changes(fh)
    out_dir.mkdir(parents=True, exist_ok=True)
    debs: list[Path] = []
    for entry in doc.get("Files", []):
        name = entry["name"]
        target = out_dir / name
        shutil.move(changes.parent / name, target)
        if name.endswith((".deb", ".udeb", ".ddeb")):
            debs.append(target)
    target_changes = out_dir / changes.name
    shutil.move(changes, target_changes)
    return BuildResult(changes=target_changes, debs=tuple(sorted(debs)), log=log)
