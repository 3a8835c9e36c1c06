Tag: package-options-missing
Severity: error
Check: sbuild-config
Explanation: The convert hook is given --package-options FILE, but that file
 does not exist: every build would fail in its pre-build hook.
See-Also: hwcapdeb-sbuild-config(1), hwcapdeb-sbuild-hook(1)
