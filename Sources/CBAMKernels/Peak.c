// The core's multiply-add peak, for `cbam-bench --profile`: twelve independent vector chains x = x·a + b, enough to
// keep two FMA pipes busy through their latency, nothing read from memory. The GEMM kernel's rate is shown against
// it (OpenBLAS's sgemm, the other reference, runs below it: 100 against 112-117 GFLOP/s on one Zen 4 core).
#include "CBAMKernels.h"

enum { CHAINS = 12 };

// x = x·0.5 + 1: after n steps chain i holds 2 − (2 − i/16)·0.5ⁿ (exactly 2 from 30 steps on), which the tests
// check. Each chain starts from its own value: chains that start alike, the compiler computes once.
#define CHAIN_STEPS(vec, splat, fma, lanes)                                                                    \
    vec x[CHAINS];                                                                                             \
    for (int i = 0; i < CHAINS; i++) x[i] = splat((float)i / 16.0f);                                           \
    const vec a = splat(0.5f), b = splat(1.0f);                                                                \
    for (long s = 0; s < steps; s++) {                                                                         \
        for (int i = 0; i < CHAINS; i++) x[i] = fma(x[i], a, b);                                               \
    }                                                                                                          \
    float total = 0.0f;                                                                                        \
    for (int i = 0; i < CHAINS; i++) {                                                                         \
        float parts[lanes];                                                                                    \
        __builtin_memcpy(parts, &x[i], sizeof parts);                                                          \
        for (int j = 0; j < (lanes); j++) total += parts[j];                                                   \
    }                                                                                                          \
    *sum = total;                                                                                              \
    return 2.0 * (double)steps * CHAINS * (lanes);

typedef float v4 __attribute__((vector_size(16)));
static inline v4 splat4(float v) { return (v4){v, v, v, v}; }
static inline v4 fma4(v4 x, v4 a, v4 b) { return x * a + b; }

static double chains_portable(long steps, float *sum) { CHAIN_STEPS(v4, splat4, fma4, 4) }

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2,fma"))) static double chains_avx2(long steps, float *sum) {
    CHAIN_STEPS(__m256, _mm256_set1_ps, _mm256_fmadd_ps, 8)
}

__attribute__((target("avx512f"))) static double chains_avx512(long steps, float *sum) {
    CHAIN_STEPS(__m512, _mm512_set1_ps, _mm512_fmadd_ps, 16)
}
#endif

double cbam_fma_chains_isa(cbam_isa isa, long steps, float *sum) {
    switch (isa) {
#if defined(__x86_64__)
    case CBAM_ISA_AVX512: return chains_avx512(steps, sum);
    case CBAM_ISA_AVX2: return chains_avx2(steps, sum);
#endif
    default: return chains_portable(steps, sum);
    }
}

double cbam_fma_chains(long steps, float *sum) { return cbam_fma_chains_isa(cbam_isa_selected(), steps, sum); }
