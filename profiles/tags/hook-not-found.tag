Tag: hook-not-found
Severity: error
Check: sbuild-config
Explanation: An external command of the sbuildrc runs a hwcapdeb program that
 is not an executable file, or not on the PATH the hooks see.
 .
 sbuild fails the build when a hook cannot run. Write the full path of the
 hwcapdeb you installed (for a virtual environment, its bin/hwcapdeb), as
 'hwcapdeb sbuild-config' does.
See-Also: hwcapdeb-sbuild-config(1)
