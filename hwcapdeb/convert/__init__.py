"""Converting a Debian source package to build glibc-hwcaps variants, and back.

One step per module, in the order a conversion runs them:

- :mod:`.options`: :class:`~.options.ConvertOptions` and ``check_options``,
  the checks that need no source package;
- :mod:`.manifest`: embed mode's record of the paths it owns (``Manifest``,
  ``Entry``), read and written;
- :mod:`.originals`: the tree as it was before any conversion;
- :mod:`.addon` (with :mod:`.addon_config`, the debian/hwcaps file and the
  Build-Depends edit) or :mod:`.embed` (with :mod:`.render`, the templates,
  and :mod:`.changelog`): the files of one mode;
- :mod:`.conversion`: ``plan_conversion`` and ``convert``, which run the
  steps; :mod:`.revert`: ``plan_revert`` and ``revert``;
- :mod:`.plan`: the result of both, a ``Plan`` of final file states, with
  its diff and ``apply``.
"""
