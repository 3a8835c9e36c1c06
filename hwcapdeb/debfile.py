"""Reading what ``hwcapdeb verify`` is given: .deb files, .changes files, trees.

``.deb`` members are read with python-debian's :class:`debian.debfile.DebFile`
(control fields, data tarball in any of dpkg's compressions) and unpacked into
a scratch directory; ``.changes`` files with :class:`debian.deb822.Changes`,
whose ``Files`` field lists the binary packages beside it.  A directory is taken
as one package's staging tree (``debian/libfoo1``, with ``DEBIAN/control`` if
dh_builddeb prepared it), as an unpacked root, or, when it holds only built
files, as a build's output directory (its .changes files, else its packages).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from debian.arfile import ArFile

from debian import deb822
from hwcapdeb.debunpack import data_tar, extract, read_control
from hwcapdeb.errors import HwcapdebError, InputError
from hwcapdeb.validate import check_package_name, open_regular, read_bytes


def _one_line(err: BaseException, limit: int = 200) -> str:
    """An exception's text on one line (tar and decompressor errors span several)."""
    text = " ".join(str(err).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: binary package files a .changes may list
PACKAGE_SUFFIXES = (".deb", ".udeb", ".ddeb")


@dataclass(frozen=True)
class PackageTree:
    """One binary package's files on disk."""

    name: str  # binary package name (Package:), or the directory name
    root: Path  # the unpacked tree: usr/lib/... below it
    origin: Path  # the .deb or directory the user named
    version: str | None = None
    architecture: str | None = None

    @property
    def is_debug(self) -> bool:
        """A -dbgsym package: debug files only, used as evidence, never audited."""
        return self.name.endswith("-dbgsym") or self.origin.suffix == ".ddeb"


def unpack_deb(path: Path, dest: Path) -> PackageTree:
    """Unpack ``path`` below ``dest``; InputError for anything that is not a sane .deb.

    The control file is read first and its Package field checked (Policy
    5.6.1) before it names the directory; the data members are then unpacked
    by :func:`hwcapdeb.debunpack.extract`, which keeps everything below it.
    """
    fd = open_regular(path, what=".deb")
    try:
        with os.fdopen(fd, "rb") as fh:
            ar = ArFile(fileobj=fh)
            dest.mkdir(parents=True, exist_ok=True)
            control = read_control(ar, path, dest)
            name = control.get("Package")
            if not name:
                raise InputError(f"{path}: control file has no Package field")
            check_package_name(name, where=f"{path}: control file")
            tree = Path(tempfile.mkdtemp(prefix=f"{name}_", dir=dest.resolve()))
            with data_tar(ar, path, tree.parent) as tar:
                extract(tar, tree, path)
    except HwcapdebError:
        raise
    except OSError as err:
        raise InputError(f"{path}: not a readable .deb ({_one_line(err)})") from None
    except Exception as err:  # ArError, tar and decompressor errors of a broken file
        raise InputError(
            f"{path}: not a readable .deb ({type(err).__name__}: {_one_line(err)})",
            hint="check it with 'dpkg-deb --info'",
        ) from None
    return PackageTree(
        name=name,
        root=tree,
        origin=path,
        version=control.get("Version"),
        architecture=control.get("Architecture"),
    )


def changes_packages(path: Path) -> list[Path]:
    """The binary package files a .changes lists (they must lie beside it)."""
    text = read_bytes(path, what=".changes file").decode("utf-8", errors="replace")
    changes = deb822.Changes(text)
    files = changes.get("Files") or []
    if not files:
        raise InputError(f"{path}: not a .changes file (no Files field)")
    result = []
    for entry in files:
        name = entry.get("name", "") if hasattr(entry, "get") else ""
        if not name.endswith(PACKAGE_SUFFIXES):
            continue
        if "/" in name or name.startswith("."):
            raise InputError(f"{path}: lists '{name}', which is not a plain file name")
        candidate = path.parent / name
        if not candidate.is_file():
            raise InputError(
                f"{path}: lists {name}, which is not beside it",
                hint="verify the .changes in the directory the build left it in",
            )
        result.append(candidate)
    if not result:
        raise InputError(f"{path}: lists no binary package", hint="was it a source-only upload?")
    return result


def _check_readable(root: Path) -> None:
    """Every directory of a tree can be listed (without root's override, some cannot)."""

    def refuse(err: OSError) -> None:
        raise InputError(f"cannot read directory {err.filename}: {err.strerror or err}",
                         hint="verify a tree you can read (or as its owner)")

    for _ in os.walk(root, onerror=refuse):
        pass


def directory_tree(path: Path) -> PackageTree:
    """A staging tree or unpacked root given as a directory."""
    control_file = path / "DEBIAN" / "control"
    name, version, arch = path.resolve().name, None, None
    if control_file.is_file():
        text = read_bytes(control_file, what="control file").decode("utf-8", errors="replace")
        control = deb822.Deb822(text)
        if "Package" in control:
            name = check_package_name(control["Package"], where=str(control_file))
        version, arch = control.get("Version"), control.get("Architecture")
    _check_readable(path)
    # resolved: the checks compare it with resolved link targets
    return PackageTree(name=name, root=path.resolve(), origin=path, version=version,
                       architecture=arch)


def _is_output_dir(path: Path) -> bool:
    """Packages or .changes files, and nothing that looks like an unpacked tree."""
    if any((path / d).is_dir() for d in ("DEBIAN", "usr", "lib", "lib64", "opt")):
        return False
    return any(p.suffix in (".changes", *PACKAGE_SUFFIXES) for p in path.iterdir())


def open_inputs(paths: Iterable[Path], scratch: Path) -> list[PackageTree]:
    """Every package the user named, unpacked (debs) or as is (directories)."""
    trees: list[PackageTree] = []
    for path in paths:
        if path.is_dir() and _is_output_dir(path):
            # a build's output directory (hwcapdeb build --out, sbuild's): its uploads
            changes = sorted(p for p in path.glob("*.changes")
                             if not p.name.endswith("_source.changes"))
            debs = changes or sorted(p for p in path.iterdir() if p.suffix in PACKAGE_SUFFIXES)
            trees.extend(open_inputs(debs, scratch))
        elif path.is_dir():
            trees.append(directory_tree(path))
        elif path.suffix == ".changes":
            trees.extend(unpack_deb(p, scratch) for p in changes_packages(path))
        elif path.suffix in PACKAGE_SUFFIXES:
            trees.append(unpack_deb(path, scratch))
        elif not path.exists():
            raise InputError(f"{path}: no such file or directory")
        else:
            raise InputError(
                f"{path}: not a .deb, .changes or directory",
                hint="give built packages, their .changes, or an unpacked tree",
            )
    return trees
