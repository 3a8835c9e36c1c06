Tag: variant-without-baseline
Severity: error
Check: verify/layout
Explanation: A glibc-hwcaps variant is shipped but no baseline build of the same
 SONAME is in the library directory of any package checked together with it.
 .
 The loader falls back to the library directory itself on CPUs below every
 variant's level: with no baseline there, the library cannot be loaded on
 them at all. Check the baseline's package too (pass the .changes file).
See-Also: ld.so(8), hwcapdeb-verify(1)
