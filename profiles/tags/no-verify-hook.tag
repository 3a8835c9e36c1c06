Tag: no-verify-hook
Severity: error
Check: sbuild-config
Explanation: No post-build-commands entry runs 'hwcapdeb verify
 %SBUILD_CHANGES': a build whose variants are broken would pass unnoticed.
 .
 Add the entry 'hwcapdeb sbuild-config' prints, or pass --no-verify if you
 really want builds unchecked.
See-Also: hwcapdeb-sbuild-config(1), hwcapdeb-verify(1), sbuild.conf(5)
