/* Plain C that gcc vectorizes by itself, as wide as -march allows.
 *
 * The reductions keep VM_BLOCK partial sums, VM_ACCS vector registers of the
 * level's width: the additions into different registers do not wait for each
 * other (one accumulator would make every level wait on the adder's latency
 * instead of using its width), the loads are contiguous, and the partial sums
 * stay in registers (no stack array to store and reload: no store-forwarding
 * stall).  Each partial sum is an ordinary element-wise loop, so gcc needs no
 * permission to reorder float additions; the partial sums are added pairwise
 * at the end.  What bounds each level is then how many floats a vector holds:
 * 4 (SSE2, the baseline and x86-64-v2), 8 (AVX2, x86-64-v3), 16 (AVX-512,
 * x86-64-v4).  saxpy has no chain to break; "#pragma omp simd"
 * (-fopenmp-simd) tells gcc that x and y do not overlap. */
#include "vecmath.h"

/* the vector width -march gives, in floats */
#if defined(__AVX512F__)
#define VM_LANES 16
#elif defined(__AVX__)
#define VM_LANES 8
#else
#define VM_LANES 4
#endif
/* independent vector accumulators: enough to hide the adder's latency at two
 * additions per cycle */
#define VM_ACCS 8
#define VM_BLOCK (VM_ACCS * VM_LANES)

/* acc[0] += acc[1] + ... + acc[VM_BLOCK - 1], pairwise */
static float vm_fold(float *acc)
{
#pragma GCC unroll 8
    for (size_t w = VM_BLOCK / 2; w > 0; w /= 2)
        for (size_t j = 0; j < w; j++)
            acc[j] += acc[j + w];
    return acc[0];
}

float vm_dot(const float *x, const float *y, size_t n)
{
    float acc[VM_BLOCK] = {0.0f};
    size_t i = 0;
    for (; i + VM_BLOCK <= n; i += VM_BLOCK)
        for (size_t j = 0; j < VM_BLOCK; j++)
            acc[j] += x[i + j] * y[i + j];
    float total = vm_fold(acc);
    for (; i < n; i++)
        total += x[i] * y[i];
    return total;
}

void vm_saxpy(size_t n, float a, const float *x, float *y)
{
    size_t i = 0;
    for (; i + VM_BLOCK <= n; i += VM_BLOCK)
#pragma omp simd
        for (size_t j = 0; j < VM_BLOCK; j++)
            y[i + j] += a * x[i + j];
    for (; i < n; i++)
        y[i] += a * x[i];
}

float vm_sum(const float *x, size_t n)
{
    float acc[VM_BLOCK] = {0.0f};
    size_t i = 0;
    for (; i + VM_BLOCK <= n; i += VM_BLOCK)
        for (size_t j = 0; j < VM_BLOCK; j++)
            acc[j] += x[i + j];
    float total = vm_fold(acc);
    for (; i < n; i++)
        total += x[i];
    return total;
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
