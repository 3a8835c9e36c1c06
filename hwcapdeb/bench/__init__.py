"""Forced-variant timing: what does each glibc-hwcaps variant buy on this machine?

The command under test runs once per variant per round, through the real
loader with the variant forced::

    ld.so --library-path LIBDIRS --glibc-hwcaps-mask x86-64-v3 COMMAND...   # the v3 variant
    ld.so --library-path LIBDIRS --glibc-hwcaps-mask ''        COMMAND...   # the baseline

``--glibc-hwcaps-mask`` is an allow-list of the built-in subdirectory names
the CPU supports, so a variant is only ever run where the loader itself would
pick it; an empty mask searches no subdirectory at all.  The file really
loaded is checked, not assumed: the warm-up run of each variant has
``LD_DEBUG=libs`` (written to a file, so the command's own output is
untouched) and every library of the package it mapped must be the variant's
file (or the baseline's, for libraries without that variant).

Rounds interleave the variants in a fresh random order, so drift of the
machine (frequency, other load) hits all variants alike; the speedup is the
ratio of medians, baseline over variant, with a paired bootstrap interval
(rounds are resampled as a whole, so each resample keeps the pairing).

The modules, in the order a run uses them:

- :mod:`~hwcapdeb.bench.layout`: what the packages offer (from the shared
  :mod:`hwcapdeb.library` model): the file the loader must map per level,
  the ``--library-path`` directories, the bytes each level adds;
- :mod:`~hwcapdeb.bench.program`: COMMAND as something ``ld.so`` can run
  (a dynamic ELF program, or a script's interpreter);
- :mod:`~hwcapdeb.bench.runner`: one timed run (wall, CPU, peak RSS from GNU
  time, the ``--score`` figure);
- :mod:`~hwcapdeb.bench.ld_debug`: which files ``LD_DEBUG=libs`` says were mapped;
- :mod:`~hwcapdeb.bench.stats`: the paired bootstrap and sign-test intervals;
- :mod:`~hwcapdeb.bench.verdict`: keep or drop, from the intervals;
- :mod:`~hwcapdeb.bench.result`: the options, per-variant results, the
  report and its JSON;
- :mod:`~hwcapdeb.bench.run`: :func:`~hwcapdeb.bench.run.run_bench`, which
  ties them together;
- :mod:`~hwcapdeb.bench.kept`: the kept-profiles file (``--write-profiles``);
- :mod:`~hwcapdeb.bench.after_build`: the per-package ``Bench-Command`` and
  the JSON saved after a build, for ``hwcapdeb report``.
"""
