/* vecmath-bench [N]: times the kernels on N floats (default 4096). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "vecmath.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 4096;
    if (n == 0) {
        fprintf(stderr, "usage: vecmath-bench [N]  (N > 0 floats)\n");
        return 2;
    }
    /* 64-byte aligned: no vector load or store, up to AVX-512's, straddles a cache line */
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *x = aligned_alloc(64, bytes), *y = aligned_alloc(64, bytes);
    if (!x || !y) {
        fprintf(stderr, "vecmath-bench: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)(i % 7) * 0.25f;
        y[i] = (float)(i % 5) * 0.5f;
    }
    /* about 2^30 element operations per kernel (a fraction of a second: process
     * start-up weighs nothing beside it), at least one pass */
    size_t passes = (1u << 30) / n + 1;
    volatile float sink = 0.0f;
    double t0 = now();
    for (size_t p = 0; p < passes; p++)
        sink += vm_dot(x, y, n);
    double t1 = now();
    for (size_t p = 0; p < passes; p++)
        vm_saxpy(n, 1e-6f, x, y);
    double t2 = now();
    for (size_t p = 0; p < passes; p++)
        sink += vm_sum(y, n);
    double t3 = now();
    double elems = (double)passes * (double)n;
    printf("vecmath-bench: level=%s n=%zu passes=%zu dot=%.4f saxpy=%.4f sum=%.4f ns/element "
           "total=%.3f s\n",
           vm_build_level(), n, passes, (t1 - t0) * 1e9 / elems, (t2 - t1) * 1e9 / elems,
           (t3 - t2) * 1e9 / elems, t3 - t0);
    free(x);
    free(y);
    return sink == 12345.0f;  /* keeps the results alive */
}
