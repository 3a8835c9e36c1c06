Tag: loader-disagrees
Severity: error
Check: verify/matrix
Explanation: For a host row of the dispatch matrix the real dynamic loader
 picked another file than hwcapdeb's model of the loader predicts.
 .
 Every other row of the matrix rests on the model, so a disagreement makes
 them doubtful. A known cause is asking a loader older than the release the
 package was built for (it refuses libraries that need newer glibc symbols):
 pass --loader-root with that release's root or chroot tarball. Please report
 any other case. --no-probe skips asking the real loader.
See-Also: ld.so(8), hwcapdeb-which(1), hwcapdeb-verify(1)
