Tag: machine-not-ready
Severity: error
Check: sbuild-config/preflight
Explanation: The sbuildrc may be right, but this machine cannot run the build
 it describes: sbuild, dpkg-source or newuidmap is missing, the user has
 no subuid/subgid range for unshare mode, there is no chroot tarball for the
 distribution and architecture, or the archive cannot be reached.
 .
 The message says what is missing and how to add it.
See-Also: hwcapdeb-sbuild-config(1), sbuild(1), mmdebstrap(1)
