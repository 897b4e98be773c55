// cbam_gemm_packed with AVX-512F: output tiles of 6 rows x up to 64 columns (24 zmm accumulators), the last
// 16-column vector of a tile masked, so any n runs without a scalar tail; 1-4 columns past whole vectors ride along
// in the tile before them as "extra" columns (a panel's six rows in one vector's lanes).
#if defined(__x86_64__)
#include "CBAMKernels.h"
#include "Kernels.h"

#include <immintrin.h>

#define TARGET __attribute__((target("avx512f")))
enum { MR = CBAM_GEMM_ROWS };

// One step's `vectors` 16-float columns of B, the last one masked by `last`.
static inline __attribute__((always_inline)) TARGET
void load_b(const int vectors, const float *restrict bp, __mmask16 last, __m512 bv[4]) {
    for (int v = 0; v < vectors; v++)
        bv[v] = v == vectors - 1 ? _mm512_maskz_loadu_ps(last, bp + 16 * v) : _mm512_loadu_ps(bp + 16 * v);
}

// One tile: `vectors` (1-4) 16-float columns of B, the last one masked by `last`, then `extra` (0-4) single columns
// from column `width` on, each accumulated as one vector of the panel's rows (lane r is row r: one multiply-add per
// column and k where a masked vector would take six, on the weights the step has just read). The loops have
// constant bounds once inlined, so the accumulators live in registers.
static inline __attribute__((always_inline)) TARGET
void tile(const int rows, const int vectors, const int extra, int width, int k, const float *restrict a,
          const float *restrict b, ptrdiff_t ldb, float *restrict c, ptrdiff_t ldc, __mmask16 last, const float *bias,
          int relu) {
    const __mmask16 panelRows = (__mmask16)((1u << MR) - 1);
    // The accumulators start as the first step's products (k >= 1): zeroed first, the array was set by a call to
    // memset on the stack for every tile, 3-4 % of a pass where k is small (Winograd on 16-64 channels; perf).
    __m512 acc[MR][4], bv[4], single[4];
    // The next row panel's output lines, fetched while this tile runs, so that its stores find them in cache: a
    // layer's output goes to memory, each line read before it is written (a large output: 2-5 % of the product).
    if (rows == MR)
        for (int r = 0; r < MR; r++)
            for (int v = 0; v < vectors; v++) _mm_prefetch((const char *)(c + (ptrdiff_t)(MR + r) * ldc + 16 * v), _MM_HINT_T0);
    load_b(vectors, b, last, bv);
    for (int r = 0; r < rows; r++) {
        const __m512 ar = _mm512_set1_ps(a[r]);
        for (int v = 0; v < vectors; v++) acc[r][v] = _mm512_mul_ps(ar, bv[v]);
    }
    if (extra > 0) {
        const __m512 column = _mm512_maskz_loadu_ps(panelRows, a);
        for (int j = 0; j < extra; j++) single[j] = _mm512_mul_ps(column, _mm512_set1_ps(b[width + j]));
    }
    for (int p = 1; p < k; p++) {
        const float *restrict ap = a + (size_t)p * MR, *restrict bp = b + (ptrdiff_t)p * ldb;
        load_b(vectors, bp, last, bv);
        _mm_prefetch((const char *)(ap + CBAM_PREFETCH_STEPS * MR), _MM_HINT_T0);
        for (int r = 0; r < rows; r++) {
            const __m512 ar = _mm512_set1_ps(ap[r]);
            for (int v = 0; v < vectors; v++) acc[r][v] = _mm512_fmadd_ps(ar, bv[v], acc[r][v]);
        }
        if (extra > 0) {
            const __m512 column = _mm512_maskz_loadu_ps(panelRows, ap);
            for (int j = 0; j < extra; j++) single[j] = _mm512_fmadd_ps(column, _mm512_set1_ps(bp[width + j]), single[j]);
        }
    }
    const __m512 zero = _mm512_setzero_ps();
    for (int r = 0; r < rows; r++) {
        float *cr = c + (ptrdiff_t)r * ldc;
        const __m512 add = _mm512_set1_ps(bias != NULL ? bias[r] : 0.0f);
        for (int v = 0; v < vectors; v++) {
            __m512 x = _mm512_add_ps(acc[r][v], add);
            if (relu) x = _mm512_max_ps(x, zero);
            if (v == vectors - 1) _mm512_mask_storeu_ps(cr + 16 * v, last, x);
            else _mm512_storeu_ps(cr + 16 * v, x);
        }
    }
    if (extra > 0) {
        const __m512 add = bias != NULL ? _mm512_maskz_loadu_ps((__mmask16)((1u << rows) - 1), bias) : zero;
        for (int j = 0; j < extra; j++) {
            __m512 x = _mm512_add_ps(single[j], add);
            if (relu) x = _mm512_max_ps(x, zero);
            float lanes[16];
            _mm512_storeu_ps(lanes, x);
            for (int r = 0; r < rows; r++) c[(ptrdiff_t)r * ldc + width + j] = lanes[r];
        }
    }
}

// All row panels against one block of columns; B's block (k x (width + extra) floats) stays in cache across them.
static inline __attribute__((always_inline)) TARGET
void column_block(const int vectors, const int extra, int width, int m, int k, const float *packed, const float *b,
                  ptrdiff_t ldb, float *c, ptrdiff_t ldc, __mmask16 last, const float *bias, int relu) {
    int row0 = 0;
    for (; row0 + MR <= m; row0 += MR) {
        tile(MR, vectors, extra, width, k, packed + (size_t)row0 * k, b, ldb, c + (ptrdiff_t)row0 * ldc, ldc, last,
             bias != NULL ? bias + row0 : NULL, relu);
    }
    // The last, partial panel with as many rows as it has (its packed rows past m are zero and skipped).
    const float *a = packed + (size_t)row0 * k, *add = bias != NULL ? bias + row0 : NULL;
    float *cc = c + (ptrdiff_t)row0 * ldc;
    switch (m - row0) {
    case 5: tile(5, vectors, extra, width, k, a, b, ldb, cc, ldc, last, add, relu); break;
    case 4: tile(4, vectors, extra, width, k, a, b, ldb, cc, ldc, last, add, relu); break;
    case 3: tile(3, vectors, extra, width, k, a, b, ldb, cc, ldc, last, add, relu); break;
    case 2: tile(2, vectors, extra, width, k, a, b, ldb, cc, ldc, last, add, relu); break;
    case 1: tile(1, vectors, extra, width, k, a, b, ldb, cc, ldc, last, add, relu); break;
    default: break;
    }
}

// column_block with `vectors` fixed and the extra columns chosen at run time.
static inline __attribute__((always_inline)) TARGET
void block_with_extra(const int vectors, int extra, int width, int m, int k, const float *packed, const float *b,
                      ptrdiff_t ldb, float *c, ptrdiff_t ldc, __mmask16 last, const float *bias, int relu) {
    switch (extra) {
    case 4: column_block(vectors, 4, width, m, k, packed, b, ldb, c, ldc, last, bias, relu); break;
    case 3: column_block(vectors, 3, width, m, k, packed, b, ldb, c, ldc, last, bias, relu); break;
    case 2: column_block(vectors, 2, width, m, k, packed, b, ldb, c, ldc, last, bias, relu); break;
    case 1: column_block(vectors, 1, width, m, k, packed, b, ldb, c, ldc, last, bias, relu); break;
    default: column_block(vectors, 0, width, m, k, packed, b, ldb, c, ldc, last, bias, relu); break;
    }
}

// A product of 1-4 columns alone (the classifier and the attention MLPs at batch 1, weights streamed from memory and
// prefetched as in `tile`): each row panel's six rows in the lanes of one vector (a load of the panel's column of A,
// a broadcast of B, one multiply-add per column and k, where a masked 16-column vector would take six); two
// accumulators per column hide the latency.
static inline __attribute__((always_inline)) TARGET
void few_columns(const int cols, int m, int k, const float *packed, const float *b, ptrdiff_t ldb, float *c,
                 ptrdiff_t ldc, const float *bias, int relu) {
    const __mmask16 six = (1u << MR) - 1;
    for (int row0 = 0; row0 < m; row0 += MR) {
        const float *a = packed + (size_t)row0 * k;
        __m512 even[4], odd[4];
        for (int j = 0; j < cols; j++) even[j] = odd[j] = _mm512_setzero_ps();
        int p = 0;
        for (; p + 2 <= k; p += 2) {
            const __m512 a0 = _mm512_maskz_loadu_ps(six, a + (size_t)p * MR);
            const __m512 a1 = _mm512_maskz_loadu_ps(six, a + (size_t)(p + 1) * MR);
            const float *b0 = b + (ptrdiff_t)p * ldb, *b1 = b0 + ldb;
            _mm_prefetch((const char *)(a + (size_t)(p + CBAM_PREFETCH_STEPS) * MR), _MM_HINT_T0);
            for (int j = 0; j < cols; j++) {
                even[j] = _mm512_fmadd_ps(a0, _mm512_set1_ps(b0[j]), even[j]);
                odd[j] = _mm512_fmadd_ps(a1, _mm512_set1_ps(b1[j]), odd[j]);
            }
        }
        if (p < k) {
            const __m512 a0 = _mm512_maskz_loadu_ps(six, a + (size_t)p * MR);
            for (int j = 0; j < cols; j++) even[j] = _mm512_fmadd_ps(a0, _mm512_set1_ps(b[(ptrdiff_t)p * ldb + j]), even[j]);
        }
        const int rows = m - row0 < MR ? m - row0 : MR;
        for (int j = 0; j < cols; j++) {
            float sums[16];
            _mm512_storeu_ps(sums, _mm512_add_ps(even[j], odd[j]));
            for (int r = 0; r < rows; r++) {
                const float v = sums[r] + (bias != NULL ? bias[row0 + r] : 0.0f);
                c[(ptrdiff_t)(row0 + r) * ldc + j] = relu && v < 0.0f ? 0.0f : v;
            }
        }
    }
}

TARGET void cbam_gemm_avx512(int m, int n, int k, const float *packed, const float *b, ptrdiff_t ldb,
                             float *c, ptrdiff_t ldc, const float *bias, int relu) {
    if (n <= 4) {
        switch (n) {
        case 4: few_columns(4, m, k, packed, b, ldb, c, ldc, bias, relu); break;
        case 3: few_columns(3, m, k, packed, b, ldb, c, ldc, bias, relu); break;
        case 2: few_columns(2, m, k, packed, b, ldb, c, ldc, bias, relu); break;
        default: few_columns(1, m, k, packed, b, ldb, c, ldc, bias, relu); break;
        }
        return;
    }
    for (int col0 = 0; col0 < n;) {
        int width = n - col0 < 64 ? n - col0 : 64, extra = 0;
        // 1-4 columns past whole vectors (after this 64-column block, or in the last, narrower block) ride along as
        // extra columns: as a block of their own they would read all of the weights again (from L3 or memory where
        // the block is a product's only one: ResNet-50's 7x7 and 14x14 maps at batch 1, 17-23 % of those products).
        if (n - col0 - width >= 1 && n - col0 - width <= 4) extra = n - col0 - width;
        else if (width > 16 && width % 16 >= 1 && width % 16 <= 4) extra = width % 16, width -= extra;
        const int vectors = (width + 15) / 16;
        const __mmask16 last = (__mmask16)(0xFFFFu >> (16 * vectors - width));
        const float *bb = b + col0;
        float *cc = c + col0;
        switch (vectors) {
        case 4: block_with_extra(4, extra, width, m, k, packed, bb, ldb, cc, ldc, last, bias, relu); break;
        case 3: block_with_extra(3, extra, width, m, k, packed, bb, ldb, cc, ldc, last, bias, relu); break;
        case 2: block_with_extra(2, extra, width, m, k, packed, bb, ldb, cc, ldc, last, bias, relu); break;
        default: block_with_extra(1, extra, width, m, k, packed, bb, ldb, cc, ldc, last, bias, relu); break;
        }
        col0 += width + extra;
    }
}
#endif
