Tag: verify-hook-without-changes
Severity: error
Check: sbuild-config
Explanation: A post-build-commands entry runs 'hwcapdeb verify' without
 %SBUILD_CHANGES (or %c): it does not check what sbuild just built.
See-Also: hwcapdeb-sbuild-config(1), sbuild.conf(5)
