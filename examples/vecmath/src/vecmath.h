/* vecmath: small float kernels that gcc vectorizes wider at each x86-64 level. */
#ifndef VECMATH_H
#define VECMATH_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* sum of x[i] * y[i] */
float vm_dot(const float *x, const float *y, size_t n);
/* y[i] += a * x[i] */
void vm_saxpy(size_t n, float a, const float *x, float *y);
/* sum of x[i] */
float vm_sum(const float *x, size_t n);
/* The CPU level this copy of the library was compiled for ("baseline",
 * "x86-64-v2", "x86-64-v3", "x86-64-v4"): shows which file the loader chose. */
const char *vm_build_level(void);

#ifdef __cplusplus
}
#endif

#endif
