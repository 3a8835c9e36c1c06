Tag: missing-soname-link
Severity: error
Check: verify/layout
Explanation: A glibc-hwcaps/LEVEL/ directory holds a build of a library but no
 entry named after its SONAME, or that entry is a dangling link, a directory,
 or a link pointing outside the directory.
 .
 The dynamic loader (glibc 2.33 and later) looks up the NEEDED name, which is
 the SONAME (libfoo.so.1), in each glibc-hwcaps subdirectory; a directory that
 holds only libfoo.so.1.2.3 is never used, so the variant is dead weight. A
 directory entry under that name makes the loader fail outright.
 .
 Ship the SONAME symlink beside the real file, as in the library directory
 itself (hwcapdeb's converted packages do).
See-Also: ld.so(8), hwcapdeb-verify(1), hwcapdeb-convert(1)
