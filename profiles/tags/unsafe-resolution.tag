Tag: unsafe-resolution
Severity: error
Check: verify/matrix
Explanation: On some CPU of the dispatch matrix the loader picks a file whose
 unguarded code needs features that CPU lacks, or whose ISA marker that
 CPU's loader refuses.
 .
 The matrix asks the loader model, for each CPU (and the host, checked
 against the real ld.so), which build of each library it loads. A file
 already reported for isa-leak or isa-marker-mismatch is not reported again.
 Use --matrix to see the whole table and --cpu to add rows.
See-Also: hwcapdeb-verify(1), hwcapdeb-which(1), hwcapdeb-cpus(1)
