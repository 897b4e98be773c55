// cbam_gemm_packed in portable C: 6 x 16 output tiles that the compiler vectorises for the build's baseline.
#include "CBAMKernels.h"
#include "Kernels.h"

enum { MR = CBAM_GEMM_ROWS, NR = 16 };

void cbam_gemm_portable(int m, int n, int k, const float *packed, const float *b, ptrdiff_t ldb,
                        float *c, ptrdiff_t ldc, const float *bias, int relu) {
    for (int col0 = 0; col0 < n; col0 += NR) {
        const int cols = n - col0 < NR ? n - col0 : NR;
        for (int row0 = 0; row0 < m; row0 += MR) {
            const float *a = packed + (size_t)row0 * k;
            float acc[MR][NR] = {{0}};
            for (int p = 0; p < k; p++) {
                const float *bp = b + (ptrdiff_t)p * ldb + col0;
                float bv[NR] = {0};
                for (int j = 0; j < cols; j++) bv[j] = bp[j];
                for (int r = 0; r < MR; r++) {
                    const float ar = a[(size_t)p * MR + r];
                    for (int j = 0; j < NR; j++) acc[r][j] += ar * bv[j];
                }
            }
            const int rows = m - row0 < MR ? m - row0 : MR;
            for (int r = 0; r < rows; r++) {
                float *cr = c + (ptrdiff_t)(row0 + r) * ldc + col0;
                const float add = bias != NULL ? bias[row0 + r] : 0.0f;
                for (int j = 0; j < cols; j++) {
                    const float v = acc[r][j] + add;
                    cr[j] = relu && v < 0.0f ? 0.0f : v;
                }
            }
        }
    }
}
