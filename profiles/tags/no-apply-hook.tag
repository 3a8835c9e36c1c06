Tag: no-apply-hook
Severity: error
Check: sbuild-config
Explanation: A conversion is prepared (or profiles were asked for) but no
 starting-build-commands entry applies it inside the chroot: the converted
 files would never reach the build.
See-Also: hwcapdeb-sbuild-config(1), hwcapdeb-sbuild-hook(1)
