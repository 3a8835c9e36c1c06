Tag: variant-adds-nothing
Severity: warning
Check: verify/isa-audit
Explanation: A variant's code is identical to the next lower build, or it uses
 no instruction above the next lower level.
 .
 The compiler's flags made no difference to this library (or never reached
 it): the variant costs its size in every installation and buys nothing.
 Drop the level from the package's profiles.
See-Also: hwcapdeb-verify(1), hwcapdeb-bench(1)
