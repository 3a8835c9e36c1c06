Tag: wrong-chroot-mode
Severity: error
Check: sbuild-config
Explanation: The sbuildrc's $chroot_mode is unset (sbuild then uses schroot) or
 differs from the mode hwcapdeb's hooks were written for (by default unshare).
 .
 Set it as 'hwcapdeb sbuild-config' prints, or pass the mode you use with
 --chroot-mode.
See-Also: hwcapdeb-sbuild-config(1), sbuild.conf(5)
