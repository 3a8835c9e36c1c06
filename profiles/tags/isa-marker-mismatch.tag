Tag: isa-marker-mismatch
Severity: error, warning
Check: verify/isa-marker
Explanation: The x86 ISA marker (GNU_PROPERTY_X86_ISA_1_NEEDED in
 .note.gnu.property) does not match the directory a build ships in.
 .
 Error: the marker needs more than the glibc-hwcaps directory's level, or the
 baseline build carries a marker above baseline. glibc picks a directory by
 the CPU's level and then refuses an object whose marker exceeds the CPU: the
 program does not start (no fallback to the next directory), and dlopen()
 fails.
 .
 Warning: a variant has no marker at all, or one below its level. The
 variant's compiler flags may not have reached the compiler (a build system
 that ignores CFLAGS); link with -Wl,-z,x86-64-vN, as hwcapdeb's profiles do.
 .
 Only x86 has such a marker; other architectures are not checked.
See-Also: ld.so(8), hwcapdeb-verify(1), hwcapdeb-profiles(1)
