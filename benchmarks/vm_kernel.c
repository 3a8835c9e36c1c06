/* vm_kernel KERNEL [N] [MELEMS]: one libvecmath kernel, MELEMS Mi elements on N floats.
 * Built by benchmarks/variants.py against the package's own libvecmath, so that
 * `hwcapdeb bench` can time each kernel alone (dot, saxpy, sum). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vecmath.h"

int main(int argc, char **argv)
{
    const char *kernel = argc > 1 ? argv[1] : "dot";
    size_t n = argc > 2 ? strtoul(argv[2], NULL, 10) : 4096;
    size_t total = (argc > 3 ? strtoul(argv[3], NULL, 10) : 1024) << 20;
    if (n == 0)
        return 2;
    /* 64-byte aligned, as in vecmath-bench: an unaligned 64-byte load straddles two
     * cache lines (measured: the x86-64-v4 build loses 40% on malloc's 16-byte alignment) */
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *x = aligned_alloc(64, bytes), *y = aligned_alloc(64, bytes);
    if (!x || !y)
        return 1;
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(i % 7) * 0.25f;
        y[i] = (float)(i % 5) * 0.5f;
    }
    size_t passes = total / n + 1;
    volatile float sink = 0.0f;
    if (strcmp(kernel, "dot") == 0)
        for (size_t p = 0; p < passes; p++)
            sink += vm_dot(x, y, n);
    else if (strcmp(kernel, "saxpy") == 0)
        for (size_t p = 0; p < passes; p++)
            vm_saxpy(n, 1e-9f, x, y);
    else if (strcmp(kernel, "sum") == 0)
        for (size_t p = 0; p < passes; p++)
            sink += vm_sum(x, n);
    else {
        fprintf(stderr, "vm_kernel: unknown kernel %s (dot, saxpy, sum)\n", kernel);
        return 2;
    }
    printf("%s %s %zu x %zu %g\n", vm_build_level(), kernel, passes, n, (double)(sink + y[0]));
    free(x);
    free(y);
    return 0;
}
