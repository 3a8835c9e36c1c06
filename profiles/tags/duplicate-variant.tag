Tag: duplicate-variant
Severity: error
Check: verify/layout
Explanation: Two packages ship the same glibc-hwcaps level of one library.
 .
 dpkg refuses to install the second package over the first's file (or one
 silently replaces the other with Replaces): ship each level of a library
 from one package only.
See-Also: hwcapdeb-verify(1), hwcapdeb-convert(1)
