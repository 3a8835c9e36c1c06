/* make check: compares the kernels with a double-precision reference. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "vecmath.h"

static int failures;

static void expect_close(const char *what, size_t n, double got, double want)
{
    double tol = 1e-4 * (fabs(want) + 1.0);
    if (fabs(got - want) > tol) {
        printf("FAIL %s n=%zu: got %.6f want %.6f\n", what, n, got, want);
        failures++;
    }
}

int main(void)
{
    static float x[1031], y[1031], y0[1031];
    const size_t sizes[] = {0, 1, 3, 7, 8, 15, 16, 17, 31, 64, 100, 1000, 1031};
    for (size_t i = 0; i < 1031; i++) {
        x[i] = (float)((i * 37) % 101) / 16.0f - 3.0f;
        y0[i] = (float)((i * 53) % 97) / 8.0f - 6.0f;
    }
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k];
        double dot = 0.0, sum = 0.0;
        for (size_t i = 0; i < n; i++) {
            dot += (double)x[i] * y0[i];
            sum += x[i];
        }
        expect_close("vm_dot", n, vm_dot(x, y0, n), dot);
        expect_close("vm_sum", n, vm_sum(x, n), sum);
        memcpy(y, y0, sizeof y);
        vm_saxpy(n, 0.5f, x, y);
        for (size_t i = 0; i < 1031; i++) {
            double want = i < n ? y0[i] + 0.5 * x[i] : y0[i];
            expect_close("vm_saxpy", n, y[i], want);
        }
    }
    printf("vecmath tests (library built for %s): %s\n", vm_build_level(),
           failures ? "FAILED" : "all passed");
    return failures != 0;
}
