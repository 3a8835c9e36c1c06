"""``hwcapdeb verify``: prove from the built files alone that a multi-build package is right.

:func:`verify_paths` takes .deb files, .changes files or unpacked trees and
returns a :class:`Report`: lintian-style findings, the dispatch matrix (which
file each library resolves to on each CPU, and whether that file is safe
there) and the bytes each variant adds.  Nothing is executed except the real
loader for the host rows of the matrix.

- :mod:`~hwcapdeb.verify.run`: the whole run (:func:`verify_paths`, :func:`verify_trees`);
- :mod:`~hwcapdeb.verify.checks`: each check, a function over the model of
  :mod:`hwcapdeb.library` (or the matrix) returning its findings;
- :mod:`~hwcapdeb.verify.matrix`: the CPU rows, the loader model's and the real
  loader's pick per CPU, and whether it is safe there;
- :mod:`~hwcapdeb.verify.report`: the :class:`Report` and its JSON.

The tags, their severities and what to do about each are in the catalogue
(``profiles/tags/*.tag``; ``hwcapdeb verify --explain TAG``, ``docs/tags.md``).
"""

from hwcapdeb.verify.matrix import DEFAULT_CPUS, Cell
from hwcapdeb.verify.report import Report, SizeRow
from hwcapdeb.verify.run import verify_paths, verify_trees

__all__ = ["DEFAULT_CPUS", "Cell", "Report", "SizeRow", "verify_paths", "verify_trees"]
