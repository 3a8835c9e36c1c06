Tag: abi-mismatch
Severity: error
Check: verify/abi
Explanation: A variant's SONAME, ELF class, machine or exported dynamic symbols
 (with their versions) differ from the baseline build's.
 .
 A program is linked against the baseline and the loader substitutes the
 variant unchecked: a missing symbol fails at load or call time, an extra one
 is an ABI the package's symbols file does not describe. All builds of a
 library must come from the same source with the same configuration; only the
 compiler's CPU flags may differ.
See-Also: hwcapdeb-verify(1), dpkg-gensymbols(1)
