"""The ``sbuild`` builder: a clean chroot build, unshare mode by default.

A converted source tree is turned into a .dsc (``dpkg-source -b`` in a scratch
directory, the orig tarballs found beside the tree), which sbuild builds in a
throw-away chroot (a tarball under ``~/.cache/sbuild/`` made by mmdebstrap, or
any chroot named with ``--chroot``).  ``hwcapdeb verify %SBUILD_CHANGES`` runs
as a post-build command, so a bad multi-build fails the sbuild run with the
findings in sbuild's own ``.build`` log, which lands in the output directory
with the .changes and the .debs.

The pre-flight checks (:func:`preflight`) take every input as a parameter
(PATH, the subuid/subgid files, the cache directory, the mirror) so the tests
exercise them for real on a machine that has everything.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from debian.deb822 import Changes, Dsc

from hwcapdeb.builders import BuildRequest, BuildResult
from hwcapdeb.builders.dpkg import BuildFailed, build_options, host_arch, source_identity, stream
from hwcapdeb.errors import BuildError, HwcapdebError, InputError, MissingToolError
from hwcapdeb.releases import host_codename
from hwcapdeb.sbuild.chroot import (
    _TARBALL_SUFFIXES,
    DEFAULT_MIRROR,
    canonical_dist,
    check_dist,
    check_valid_until,
    chroot_mirror,
    chroot_tarball,
    mmdebstrap_command,  # noqa: F401 (re-exported: its home was here)
    tarball_command,
)
from hwcapdeb.sbuild.rc import SbuildSettings, has_verify_hook, perl_string, read_rc, verify_hook
from hwcapdeb.tools import TOOL_PACKAGES, find_tool, run

#: sbuild's own place for unshare-mode chroot tarballs (sbuild(1), --chroot-mode=unshare)
DEFAULT_CACHE = Path("~/.cache/sbuild")
#: Preflight.mirror: take the archive from the chroot tarball
AUTO = "auto"
#: an unshare chroot maps 65536 ids (uid 0..65535 inside)
NEEDED_IDS = 65536


def which(program: str, path: str | None) -> str:
    """``program`` on ``path`` (PATH syntax), or a MissingToolError naming its package."""
    found = shutil.which(program, path=path)
    if found is None:
        package = TOOL_PACKAGES.get(program, program)
        raise MissingToolError(
            f"'{program}' was not found on PATH",
            hint=f"install it with 'apt-get install {package}'",
        )
    return found


def _ids_of(user: str) -> tuple[str, str]:
    """(name, numeric id) of a user; subuid lines may use either."""
    try:
        entry = pwd.getpwnam(user)
        return entry.pw_name, str(entry.pw_uid)
    except KeyError:
        return user, user


def subid_range(file: Path, user: str) -> int:
    """How many subordinate ids ``user`` has in ``file`` (/etc/subuid syntax); 0 if none."""
    names = set(_ids_of(user))
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return 0
    except OSError as err:
        raise InputError(f"cannot read {file}: {err.strerror}") from None
    total = 0
    for line in text.splitlines():
        parts = line.strip().split(":")
        if len(parts) == 3 and parts[0] in names and parts[2].isdigit():
            total += int(parts[2])
    return total


def check_subids(user: str, subuid: Path, subgid: Path) -> None:
    """Unshare mode maps 65536 ids: both files need a range that big for ``user``."""
    for file, kind in ((subuid, "uid"), (subgid, "gid")):
        if subid_range(file, user) < NEEDED_IDS:
            raise MissingToolError(
                f"no subordinate {kind} range of {NEEDED_IDS} ids for {user} in {file} "
                "(sbuild's unshare mode needs one)",
                hint=f"add one with 'usermod --add-subuids 100000-165535 --add-subgids "
                f"100000-165535 {user}' (or a line '{user}:100000:65536' in {subuid} and {subgid})",
            )


def check_archive(mirror: str, dist: str, *, timeout: float = 10.0) -> None:
    """The archive sbuild installs build-dependencies from answers (its InRelease file)."""
    url = f"{mirror.rstrip('/')}/dists/{dist}/InRelease"
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout):
            return
    except urllib.error.HTTPError as err:
        reason = f"HTTP {err.code}"
    except (urllib.error.URLError, OSError) as err:
        reason = str(getattr(err, "reason", err))
    raise MissingToolError(
        f"cannot reach the Debian archive at {url} ({reason}); sbuild installs the "
        "build-dependencies from it",
        hint="check the network or proxy (the mirror is the one the chroot tarball's "
        "sources.list names: recreate the tarball with a reachable one if needed)",
    )


@dataclass(frozen=True)
class Preflight:
    """Everything an unshare sbuild run needs, as parameters (tests change them)."""

    dist: str
    arch: str
    chroot_mode: str = "unshare"
    chroot: str | None = None  # a name or a tarball path; None: the cache's dist-arch tarball
    path: str | None = None  # PATH to search; None: os.environ's
    user: str = field(default_factory=lambda: pwd.getpwuid(os.getuid()).pw_name)
    subuid: Path = Path("/etc/subuid")
    subgid: Path = Path("/etc/subgid")
    cache: Path = DEFAULT_CACHE
    # the archive to check: AUTO reads it from the chroot tarball's sources.list
    # (deb.debian.org if that fails); None skips the network check
    mirror: str | None = AUTO
    need_tarball: bool = True


def preflight(p: Preflight) -> None:
    """Raise a one-line HwcapdebError for the first thing that would make sbuild fail."""
    unshare = p.chroot_mode == "unshare"
    tarball_named = bool(p.chroot) and (
        "/" in str(p.chroot) or str(p.chroot).endswith(_TARBALL_SUFFIXES)
    )
    # the archive to ask: None means no network at all (tests, offline checks)
    network = None if p.mirror is None else (DEFAULT_MIRROR if p.mirror == AUTO else p.mirror)
    if unshare and not p.chroot:
        check_dist(p.dist, p.arch, p.cache, network)
    which("sbuild", p.path)
    which("dpkg-source", p.path)
    tarball: Path | None = None
    if unshare:
        which("newuidmap", p.path)
        check_subids(p.user, p.subuid, p.subgid)
        if p.chroot and tarball_named:
            tarball = Path(p.chroot).expanduser()
            if not tarball.is_file():
                argv = tarball_command(p.dist, p.arch, tarball.parent, network)
                raise InputError(
                    f"chroot tarball {p.chroot} does not exist",
                    hint=f"create it with: {shlex.join(argv)}",
                )
        elif p.chroot is None:
            tarball = chroot_tarball(p.dist, p.arch, p.cache)
            if tarball is None and p.need_tarball:
                command = shlex.join(tarball_command(p.dist, p.arch, p.cache, network))
                raise MissingToolError(
                    f"no {p.dist}-{p.arch} chroot tarball in {p.cache}",
                    hint=f"create it with: {command}"
                    if shutil.which("mmdebstrap", path=p.path)
                    else f"install mmdebstrap ('apt-get install mmdebstrap'), then run: {command}",
                )
    if network is None:
        return
    mirror = (tarball and chroot_mirror(tarball)) if p.mirror == AUTO else p.mirror
    check_archive(mirror or DEFAULT_MIRROR, p.dist)
    if tarball is not None:
        check_valid_until(tarball, mirror or DEFAULT_MIRROR, p.dist, p.arch)


def _has_option(args: Sequence[str], *names: str) -> bool:
    return any(a == n or a.startswith(n + "=") for a in args for n in names)


def _option_value(args: Sequence[str], *names: str) -> str | None:
    for i, a in enumerate(args):
        for n in names:
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
            if a == n and i + 1 < len(args):
                return args[i + 1]
    return None


def _without_option(args: Sequence[str], *names: str) -> list[str]:
    """``args`` less every ``NAME VALUE`` and ``NAME=VALUE`` of ``names``."""
    kept: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a in names:
            skip = True
        elif not any(a.startswith(n + "=") for n in names):
            kept.append(a)
    return kept


def make_dsc(tree: Path, work: Path) -> Path:
    """Build a source package of ``tree`` in ``work`` (orig tarballs from beside the tree)."""
    name, version = source_identity(tree)
    upstream = version.rsplit("-", 1)[0] if "-" in version else version
    fmt_file = tree / "debian" / "source" / "format"
    fmt = fmt_file.read_text(encoding="utf-8").strip() if fmt_file.is_file() else "1.0"
    copy = work / f"{name}-{upstream}"
    shutil.copytree(tree, copy, symlinks=True)
    if "quilt" in fmt or (fmt == "1.0" and "-" in version):
        for orig in tree.parent.glob(f"{name}_{upstream}.orig*.tar*"):
            shutil.copy2(orig, work / orig.name)
        if "quilt" in fmt and not any(work.glob(f"{name}_{upstream}.orig.tar*")):
            raise InputError(
                f"no {name}_{upstream}.orig.tar.* beside {tree}",
                hint="a '3.0 (quilt)' source needs its orig tarball next to the tree; "
                "or pass the .dsc instead",
            )
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    result = run(["dpkg-source", "-b", copy.name], cwd=work, env=env, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise BuildError(f"dpkg-source -b could not pack {tree}: {last}")
    dscs = sorted(work.glob(f"{name}_*.dsc"))
    if not dscs:
        raise BuildError(f"dpkg-source -b left no .dsc for {name} in {work}")
    return dscs[0]


class SbuildBuilder:
    """Builds with sbuild in a clean chroot (unshare mode unless told otherwise)."""

    name = "sbuild"

    def __init__(
        self,
        *,
        dist: str | None = None,
        chroot_mode: str = "unshare",
        chroot: str | None = None,
        verify: bool = True,
        preflight_overrides: Mapping[str, object] | None = None,
        settings: SbuildSettings | None = None,
    ) -> None:
        self.dist = dist
        self.chroot_mode = chroot_mode
        self.chroot = chroot
        self.verify = verify
        self.preflight_overrides = dict(preflight_overrides or {})
        self.settings = settings or SbuildSettings(chroot_mode=chroot_mode, verify=verify)

    def _preflight(self, extra_args: Sequence[str] = ()) -> Preflight:
        dist = _option_value(extra_args, "-d", "--dist") or self.dist or host_codename()
        arch = _option_value(extra_args, "--arch", "--host") or host_arch()
        mode = _option_value(extra_args, "--chroot-mode") or self.chroot_mode
        chroot = _option_value(extra_args, "-c", "--chroot") or self.chroot
        cache = Path(str(self.preflight_overrides.get("cache", DEFAULT_CACHE)))
        if mode == "unshare" and not chroot:
            dist = canonical_dist(dist, arch, cache)  # an alias -> the tarball's name
        values: dict[str, object] = {
            "dist": dist,
            "arch": arch,
            "chroot_mode": mode,
            "chroot": chroot,
            **self.preflight_overrides,
        }
        return Preflight(**values)  # type: ignore[arg-type]

    def check(self) -> None:
        find_tool("sbuild")
        find_tool("dpkg-source")
        if self.chroot_mode == "unshare":
            find_tool("newuidmap")

    def argv(self, dsc: Path, request: BuildRequest, pre: Preflight) -> list[str]:
        """The sbuild command line for ``dsc`` (our defaults, then the user's --sbuild-arg)."""
        args = list(request.extra_args)
        argv = [find_tool("sbuild")]
        if request.on_line is not None:
            argv.append("--verbose")  # the log on stdout too, for the progress display
        if not _has_option(args, "--chroot-mode"):
            argv.append(f"--chroot-mode={pre.chroot_mode}")
        args = _without_option(args, "-d", "--dist")  # pre.dist: the user's, resolved
        argv.append(f"--dist={pre.dist}")
        if not _has_option(args, "-c", "--chroot") and pre.chroot:
            argv.append(f"--chroot={pre.chroot}")
        if not _has_option(args, "--arch", "--host"):
            argv.append(f"--arch={pre.arch}")
        if not _has_option(args, "--run-lintian", "--no-run-lintian"):
            argv.append("--no-run-lintian")  # lintian is a separate step; keeps the run short
        argv.append(f"--build-dir={request.out_dir}")
        if self.verify and not configured_verify_hook(os.environ):
            argv += [
                "--log-external-command-output",
                "--log-external-command-error",
                "--post-build-commands="
                + " ".join(_shell_quote(a) for a in verify_hook(self.settings)),
            ]
        argv += args
        argv.append(str(dsc))
        return argv

    def build(self, request: BuildRequest) -> BuildResult:
        self.check()
        pre = self._preflight(request.extra_args)
        preflight(pre)
        request.out_dir.mkdir(parents=True, exist_ok=True)
        out_dir = request.out_dir.resolve()
        with tempfile.TemporaryDirectory(prefix="hwcapdeb-sbuild-") as scratch:
            work = Path(scratch)
            if request.source.is_dir():
                dsc = make_dsc(request.source.resolve(), work)
            else:
                dsc = request.source.resolve()
            with dsc.open(encoding="utf-8") as fh:
                control = Dsc(fh)
            source = control["Source"]
            version = control["Version"].split(":", 1)[-1]
            env = dict(os.environ)
            env.update(request.env)
            env["DEB_BUILD_OPTIONS"] = build_options(
                env.get("DEB_BUILD_OPTIONS", ""),
                jobs=request.jobs or os.cpu_count() or 1,
                nocheck=request.nocheck,
            )
            env.setdefault("LC_ALL", "C.UTF-8")
            # The chroot sees only the environment sbuild lets through: hand our
            # HWCAPDEB_* settings to the build through an extra config file.
            extra = {k: v for k, v in request.env.items() if k.startswith("HWCAPDEB_")}
            if extra:
                rc = work / "hwcapdeb.sbuild.rc"
                rc.write_text(_build_environment_rc(extra, env.get("SBUILD_CONFIG")))
                env["SBUILD_CONFIG"] = str(rc)
            argv = self.argv(dsc, request, pre)
            stream_log = request.log or out_dir / f"{source}_{version}_{pre.arch}.hwcapdeb.log"
            returncode, tail = stream(
                argv, cwd=out_dir, env=env, log=stream_log, on_line=request.on_line
            )
        log = sbuild_log(out_dir, source, version, pre.arch) or stream_log
        if returncode != 0:
            raise BuildFailed(
                f"sbuild failed for {source} {version} (exit {returncode})" + _verify_summary(log),
                log=log,
                tail=tail,
                hint=f"the full log is {log}",
            )
        changes = out_dir / f"{source}_{version}_{pre.arch}.changes"
        if not changes.is_file():
            raise BuildError(f"sbuild left no {changes.name} in {out_dir}")
        with changes.open(encoding="utf-8") as fh:
            doc = Changes(fh)
        debs = tuple(
            sorted(
                out_dir / f["name"]
                for f in doc.get("Files", [])
                if f["name"].endswith((".deb", ".udeb", ".ddeb"))
            )
        )
        return BuildResult(changes=changes, debs=debs, log=log)


def configured_verify_hook(env: Mapping[str, str]) -> bool:
    """Do the user's sbuild config files already verify (then we do not add it twice)?"""
    files = [Path(env.get("HOME", "~")).expanduser() / ".sbuildrc"]
    if env.get("SBUILD_CONFIG"):
        files.append(Path(env["SBUILD_CONFIG"]))
    for file in files:
        if not file.is_file() or shutil.which("perl") is None:
            continue
        try:
            if has_verify_hook(read_rc(file)):
                return True
        except HwcapdebError:
            continue  # sbuild itself will report a broken config
    return False


def _shell_quote(word: str) -> str:
    # %SBUILD_* escapes hold no shell metacharacters, so quote() leaves them bare
    # for sbuild's substitution.
    return shlex.quote(word)


def _build_environment_rc(extra: Mapping[str, str], user_config: str | None) -> str:
    lines = []
    if user_config:  # SBUILD_CONFIG is one file: keep the user's by reading it first
        lines.append(f"do {perl_string(user_config)};")
    pairs = ", ".join(f"{perl_string(k)} => {perl_string(v)}" for k, v in sorted(extra.items()))
    lines.append(f"$build_environment = {{ %{{ $build_environment // {{}} }}, {pairs} }};")
    lines.append("1;")
    return "\n".join(lines) + "\n"


def sbuild_log(out_dir: Path, source: str, version: str, arch: str) -> Path | None:
    """sbuild's own .build log of this build in ``out_dir`` (the symlink sbuild makes, resolved)."""
    link = out_dir / f"{source}_{version}_{arch}.build"
    if link.exists():
        return link
    logs = sorted(out_dir.glob(f"{source}_{version}_{arch}-*.build"))
    return logs[-1] if logs else None


def _verify_summary(log: Path) -> str:
    """'; hwcapdeb verify: <first finding>' when the verify hook is what failed."""
    try:
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    if "Post Build Commands" not in text:
        return ""
    tail = text.split("Post Build Commands", 1)[1]
    findings = [ln.strip() for ln in tail.splitlines() if ln.startswith(("E: ", "W: "))]
    if findings:
        return f": verify found {len(findings)} problem(s), first: {findings[0]}"
    return ": the post-build verify hook failed"
