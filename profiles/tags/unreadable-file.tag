Tag: unreadable-file
Severity: error, warning
Check: verify/layout
Explanation: A file of a library directory or a glibc-hwcaps directory cannot be
 parsed as ELF (truncated, corrupt, or not ELF at all).
 .
 Error: a library (or a file named like one, which the loader would try and
 fail on). Warning: some other non-ELF file in a glibc-hwcaps directory;
 nothing but libraries belongs there.
See-Also: hwcapdeb-verify(1), readelf(1)
