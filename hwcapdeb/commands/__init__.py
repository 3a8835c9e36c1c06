"""One module per subcommand; each exposes a click command named ``command``.

Commands return their exit code through ``ctx.exit(code)`` and raise
:class:`hwcapdeb.errors.HwcapdebError` for anything the user must fix.
"""
