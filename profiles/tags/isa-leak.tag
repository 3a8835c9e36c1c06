Tag: isa-leak
Severity: error
Check: verify/isa-audit
Explanation: A build contains code above its level (above baseline for the
 baseline build, above x86-64-vN for glibc-hwcaps/x86-64-vN) that nothing
 dispatches at run time: a CPU of that level would run it and die of SIGILL
 (or, for LZCNT, compute a wrong result).
 .
 The instruction audit decodes every executable section, attributes each
 instruction above the level to a function and judges whether that function
 is a dispatch target (ISA-named clone, IFUNC target, code behind a CPU check)
 or runs unconditionally. The message names the first such instruction, its
 function, the features it needs and the rule that convicted it. With debug
 information (-dbgsym packages, --debug-root) the compilers' DW_AT_producer
 flags decide.
 .
 The usual cause is -march=native or a hard-coded -mavx2 in the upstream build
 system reaching the baseline build.
See-Also: hwcapdeb-verify(1), gcc(1)
