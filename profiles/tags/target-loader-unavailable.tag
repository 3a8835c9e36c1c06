Tag: target-loader-unavailable
Severity: warning
Check: verify/matrix
Explanation: The .buildinfo names the libc6 the packages were built against,
 and its loader could not be had: no sbuild chroot tarball with that libc6,
 and the libc6 .deb could not be fetched from the archive.
 .
 The host's loader answered instead. Where it refuses the library for
 needing newer GLIBC_ symbols than the host has, the host rows of the matrix
 say "not answered" instead of reporting loader-disagrees.
 Pass --loader-root with an unpacked root or chroot tarball of the target
 release, or set HWCAPDEB_MIRROR to an archive that serves that libc6.
See-Also: hwcapdeb-verify(1)
