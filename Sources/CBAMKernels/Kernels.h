// The instruction-set variants behind cbam_gemm_packed (same contract); Dispatch.c picks one.
#ifndef CBAM_KERNELS_INTERNAL_H
#define CBAM_KERNELS_INTERNAL_H

#include <stddef.h>

void cbam_gemm_portable(int m, int n, int k, const float *packed, const float *b, ptrdiff_t ldb,
                        float *c, ptrdiff_t ldc, const float *bias, int relu);
#if defined(__x86_64__)
void cbam_gemm_avx2(int m, int n, int k, const float *packed, const float *b, ptrdiff_t ldb,
                    float *c, ptrdiff_t ldc, const float *bias, int relu);
void cbam_gemm_avx512(int m, int n, int k, const float *packed, const float *b, ptrdiff_t ldb,
                      float *c, ptrdiff_t ldc, const float *bias, int relu);
#endif

#endif
