Tag: legacy-hwcaps-directory
Severity: warning
Check: verify/matrix
Explanation: On some CPU of the dispatch matrix the loader picks a copy of the
 library in a legacy hwcaps directory (tls/, x86_64/, haswell/, avx512_1/,
 xeon_phi/ and their combinations) instead of a glibc-hwcaps/ level or the
 baseline.
 .
 glibc 2.36 and older search those directories after glibc-hwcaps/ and before
 the directory itself; glibc 2.37 dropped them (rule legacy-hwcaps in
 profiles/glibc.json). The same package thus loads different files on
 different releases. Ship variants in glibc-hwcaps/ only.
See-Also: ld.so(8), hwcapdeb-verify(1)
