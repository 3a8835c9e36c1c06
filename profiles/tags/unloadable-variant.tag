Tag: unloadable-variant
Severity: error
Check: verify/matrix
Explanation: On some CPU of the matrix the dynamic loader picks this file and
 then fails to load it. The failure is fatal: the loader does not fall back
 to the next directory, so every program linked against the library stops
 at start-up on such a CPU.
 .
 Causes: a glibc-hwcaps link to a file that is no shared library, an object
 without loadable segments or without a dynamic section, a PIE executable
 installed as a variant, or a DT_NEEDED that only the variant has and that
 cannot be found. Install the variant the way the baseline is installed, or
 drop it.
See-Also: ld.so(8), hwcapdeb-verify(1)
