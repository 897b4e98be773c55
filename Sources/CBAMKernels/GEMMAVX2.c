// cbam_gemm_packed with AVX2 + FMA: output tiles of 6 rows x up to 16 columns (12 ymm accumulators); the last
// 8-column vector of a tile is loaded and stored under a lane mask.
#if defined(__x86_64__)
#include "CBAMKernels.h"
#include "Kernels.h"

#include <immintrin.h>

#define TARGET __attribute__((target("avx2,fma")))
enum { MR = CBAM_GEMM_ROWS };

static inline __attribute__((always_inline)) TARGET
void tile(const int rows, const int vectors, int k, const float *restrict a, const float *restrict b, ptrdiff_t ldb,
          float *restrict c, ptrdiff_t ldc, __m256i last, const float *bias, int relu) {
    __m256 acc[MR][2];
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < vectors; v++) acc[r][v] = _mm256_setzero_ps();
    for (int p = 0; p < k; p++) {
        const float *bp = b + (ptrdiff_t)p * ldb;
        _mm_prefetch((const char *)(a + (size_t)(p + CBAM_PREFETCH_STEPS) * MR), _MM_HINT_T0);
        __m256 bv[2];
        for (int v = 0; v < vectors; v++)
            bv[v] = v == vectors - 1 ? _mm256_maskload_ps(bp + 8 * v, last) : _mm256_loadu_ps(bp + 8 * v);
        for (int r = 0; r < rows; r++) {
            const __m256 ar = _mm256_broadcast_ss(a + (size_t)p * MR + r);
            for (int v = 0; v < vectors; v++) acc[r][v] = _mm256_fmadd_ps(ar, bv[v], acc[r][v]);
        }
    }
    const __m256 zero = _mm256_setzero_ps();
    for (int r = 0; r < rows; r++) {
        float *cr = c + (ptrdiff_t)r * ldc;
        const __m256 add = _mm256_set1_ps(bias != NULL ? bias[r] : 0.0f);
        for (int v = 0; v < vectors; v++) {
            __m256 x = _mm256_add_ps(acc[r][v], add);
            if (relu) x = _mm256_max_ps(x, zero);
            if (v == vectors - 1) _mm256_maskstore_ps(cr + 8 * v, last, x);
            else _mm256_storeu_ps(cr + 8 * v, x);
        }
    }
}

static inline __attribute__((always_inline)) TARGET
void column_block(const int vectors, int m, int k, const float *packed, const float *b, ptrdiff_t ldb,
                  float *c, ptrdiff_t ldc, __m256i last, const float *bias, int relu) {
    int row0 = 0;
    for (; row0 + MR <= m; row0 += MR) {
        tile(MR, vectors, k, packed + (size_t)row0 * k, b, ldb, c + (ptrdiff_t)row0 * ldc, ldc, last,
             bias != NULL ? bias + row0 : NULL, relu);
    }
    // The last, partial panel with as many rows as it has (its packed rows past m are zero and skipped).
    const float *a = packed + (size_t)row0 * k, *add = bias != NULL ? bias + row0 : NULL;
    float *cc = c + (ptrdiff_t)row0 * ldc;
    switch (m - row0) {
    case 5: tile(5, vectors, k, a, b, ldb, cc, ldc, last, add, relu); break;
    case 4: tile(4, vectors, k, a, b, ldb, cc, ldc, last, add, relu); break;
    case 3: tile(3, vectors, k, a, b, ldb, cc, ldc, last, add, relu); break;
    case 2: tile(2, vectors, k, a, b, ldb, cc, ldc, last, add, relu); break;
    case 1: tile(1, vectors, k, a, b, ldb, cc, ldc, last, add, relu); break;
    default: break;
    }
}

TARGET void cbam_gemm_avx2(int m, int n, int k, const float *packed, const float *b, ptrdiff_t ldb,
                           float *c, ptrdiff_t ldc, const float *bias, int relu) {
    for (int col0 = 0; col0 < n; col0 += 16) {
        const int cols = n - col0 < 16 ? n - col0 : 16;
        const int vectors = (cols + 7) / 8;
        const int inLast = cols - 8 * (vectors - 1);  // 1...8 lanes of the last vector
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32(inLast), lane);
        if (vectors == 2) column_block(2, m, k, packed, b + col0, ldb, c + col0, ldc, last, bias, relu);
        else column_block(1, m, k, packed, b + col0, ldb, c + col0, ldc, last, bias, relu);
    }
}
#endif
