// cbam_gemm_packed in portable C, for CPUs without AVX2 (and aarch64): 6 x 8 output tiles held in twelve
// 4-float vectors (GCC/Clang vector extensions: SSE2 on any x86-64, NEON on aarch64), the last, partial vector of a
// tile through a small buffer.
#include "CBAMKernels.h"
#include "Kernels.h"

#include <string.h>

typedef float v4 __attribute__((vector_size(16)));
enum { MR = CBAM_GEMM_ROWS, NR = 8 };

static inline v4 load4(const float *p) { v4 v; memcpy(&v, p, sizeof v); return v; }
static inline void store4(float *p, v4 v) { memcpy(p, &v, sizeof v); }

// One tile of `rows` (1-6) rows and `cols` (1-8) columns; full tiles (cols == 8) read B in place.
static inline __attribute__((always_inline))
void tile(const int rows, int cols, int k, const float *restrict a, const float *restrict b, ptrdiff_t ldb,
          float *restrict c, ptrdiff_t ldc, const float *bias, int relu) {
    v4 acc[MR][2];
    for (int r = 0; r < rows; r++) acc[r][0] = acc[r][1] = (v4){0, 0, 0, 0};
    for (int p = 0; p < k; p++) {
        const float *bp = b + (ptrdiff_t)p * ldb;
        v4 b0, b1;
        if (cols == NR) {
            b0 = load4(bp), b1 = load4(bp + 4);
        } else {
            float line[NR] = {0};
            memcpy(line, bp, sizeof(float) * (size_t)cols);
            b0 = load4(line), b1 = load4(line + 4);
        }
        for (int r = 0; r < rows; r++) {
            const float ar = a[(size_t)p * MR + r];
            acc[r][0] += ar * b0;
            acc[r][1] += ar * b1;
        }
    }
    for (int r = 0; r < rows; r++) {
        const float add = bias != NULL ? bias[r] : 0.0f;
        float out[NR];
        store4(out, acc[r][0] + add);
        store4(out + 4, acc[r][1] + add);
        float *cr = c + (ptrdiff_t)r * ldc;
        for (int j = 0; j < cols; j++) cr[j] = relu && out[j] < 0.0f ? 0.0f : out[j];
    }
}

void cbam_gemm_portable(int m, int n, int k, const float *packed, const float *b, ptrdiff_t ldb,
                        float *c, ptrdiff_t ldc, const float *bias, int relu) {
    for (int col0 = 0; col0 < n; col0 += NR) {
        const int cols = n - col0 < NR ? n - col0 : NR;
        int row0 = 0;
        for (; row0 + MR <= m; row0 += MR) {
            tile(MR, cols, k, packed + (size_t)row0 * k, b + col0, ldb, c + (ptrdiff_t)row0 * ldc + col0, ldc,
                 bias != NULL ? bias + row0 : NULL, relu);
        }
        if (row0 < m) {
            tile(m - row0, cols, k, packed + (size_t)row0 * k, b + col0, ldb, c + (ptrdiff_t)row0 * ldc + col0, ldc,
                 bias != NULL ? bias + row0 : NULL, relu);
        }
    }
}
