Tag: hook-output-not-logged
Severity: error
Check: sbuild-config
Explanation: $log_external_command_output or $log_external_command_error is
 not set: what hwcapdeb's hooks print (verify's findings, the conversion's
 summary) would not reach the build log.
 .
 Set both to 1.
See-Also: hwcapdeb-sbuild-config(1), sbuild.conf(5)
