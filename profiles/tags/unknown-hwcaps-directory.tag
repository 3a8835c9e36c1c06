Tag: unknown-hwcaps-directory
Severity: warning
Check: verify/layout
Explanation: A subdirectory of glibc-hwcaps/ is not a level glibc searches on
 this architecture (a typo, a legacy name such as haswell/, or a level of
 another architecture).
 .
 The loader never looks there; what it holds is never used. The message
 lists the names glibc does search.
See-Also: ld.so(8), hwcapdeb-profiles(1), hwcapdeb-verify(1)
