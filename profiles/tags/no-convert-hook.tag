Tag: no-convert-hook
Severity: error
Check: sbuild-config
Explanation: Profiles were asked for, but no pre-build-commands entry runs
 'hwcapdeb sbuild-hook prepare': packages would be built unconverted. Or a
 starting-build-commands entry applies a conversion that nothing prepares:
 every build would fail.
 .
 Write the pre-build and starting-build entries together, as
 'hwcapdeb sbuild-config --profile ...' prints them.
See-Also: hwcapdeb-sbuild-config(1), hwcapdeb-sbuild-hook(1)
