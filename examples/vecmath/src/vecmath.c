/* The loops are plain C; "#pragma omp simd reduction" (-fopenmp-simd) lets gcc
 * reorder the float reductions, so each -march level gets wider vectors. */
#include "vecmath.h"

float vm_dot(const float *x, const float *y, size_t n)
{
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++)
        acc += x[i] * y[i];
    return acc;
}

void vm_saxpy(size_t n, float a, const float *x, float *y)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

float vm_sum(const float *x, size_t n)
{
    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++)
        acc += x[i];
    return acc;
}

const char *vm_build_level(void)
{
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__)
    return "x86-64-v4";
#elif defined(__AVX2__) && defined(__FMA__)
    return "x86-64-v3";
#elif defined(__SSE4_2__) && defined(__POPCNT__)
    return "x86-64-v2";
#else
    return "baseline";
#endif
}
