// Chooses the kernels' instruction set once: the best this CPU supports, or a lower one named by CBAM_KERNELS.
#include "CBAMKernels.h"
#include "Kernels.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

int cbam_isa_supported(cbam_isa isa) {
    switch (isa) {
    case CBAM_ISA_PORTABLE: return 1;
#if defined(__x86_64__)
    case CBAM_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case CBAM_ISA_AVX512: return __builtin_cpu_supports("avx512f");
#endif
    default: return 0;
    }
}

const char *cbam_isa_name(cbam_isa isa) {
    switch (isa) {
    case CBAM_ISA_AVX2: return "avx2";
    case CBAM_ISA_AVX512: return "avx512";
    default: return "portable";
    }
}

static cbam_isa selected = CBAM_ISA_PORTABLE;
static pthread_once_t selection = PTHREAD_ONCE_INIT;

static void select_isa(void) {
    cbam_isa best = cbam_isa_supported(CBAM_ISA_AVX512) ? CBAM_ISA_AVX512
                  : cbam_isa_supported(CBAM_ISA_AVX2)   ? CBAM_ISA_AVX2
                                                        : CBAM_ISA_PORTABLE;
    const char *asked = getenv("CBAM_KERNELS");
    if (asked != NULL) {
        for (int isa = CBAM_ISA_PORTABLE; isa < (int)best; isa++) {
            if (strcmp(asked, cbam_isa_name((cbam_isa)isa)) == 0) best = (cbam_isa)isa;
        }
    }
    selected = best;
}

cbam_isa cbam_isa_selected(void) {
    pthread_once(&selection, select_isa);
    return selected;
}

void cbam_gemm_packed(int m, int n, int k, const float *packed, const float *b, ptrdiff_t ldb,
                      float *c, ptrdiff_t ldc, const float *bias, int relu) {
    cbam_gemm_packed_isa(cbam_isa_selected(), m, n, k, packed, b, ldb, c, ldc, bias, relu);
}

void cbam_gemm_packed_isa(cbam_isa isa, int m, int n, int k, const float *packed, const float *b, ptrdiff_t ldb,
                          float *c, ptrdiff_t ldc, const float *bias, int relu) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        // An empty sum: the epilogue of zeros (the kernels start from the first product).
        for (int i = 0; i < m; i++) {
            const float v = bias != NULL && !(relu && bias[i] < 0.0f) ? bias[i] : 0.0f;
            for (int j = 0; j < n; j++) c[(ptrdiff_t)i * ldc + j] = v;
        }
        return;
    }
    switch (isa) {
#if defined(__x86_64__)
    case CBAM_ISA_AVX512: cbam_gemm_avx512(m, n, k, packed, b, ldb, c, ldc, bias, relu); return;
    case CBAM_ISA_AVX2: cbam_gemm_avx2(m, n, k, packed, b, ldb, c, ldc, bias, relu); return;
#endif
    default: cbam_gemm_portable(m, n, k, packed, b, ldb, c, ldc, bias, relu); return;
    }
}

size_t cbam_gemm_packed_count(int m, int k) {
    size_t panels = ((size_t)m + CBAM_GEMM_ROWS - 1) / CBAM_GEMM_ROWS;
    return panels * CBAM_GEMM_ROWS * (size_t)(k > 0 ? k : 0);
}

void cbam_gemm_pack(const float *a, ptrdiff_t lda, int m, int k, float *packed) {
    for (int row0 = 0; row0 < m; row0 += CBAM_GEMM_ROWS) {
        float *panel = packed + (size_t)row0 * k;
        for (int p = 0; p < k; p++) {
            for (int r = 0; r < CBAM_GEMM_ROWS; r++) {
                panel[(size_t)p * CBAM_GEMM_ROWS + r] = row0 + r < m ? a[(ptrdiff_t)(row0 + r) * lda + p] : 0.0f;
            }
        }
    }
}
