// The instruction-set variants behind cbam_gemm_packed and the Winograd transforms (same contracts); the dispatchers
// pick one.
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

void cbam_winograd4_input_portable(const float *d, ptrdiff_t dl, int count, float *v, ptrdiff_t stride);
#if defined(__x86_64__)
void cbam_winograd4_input_avx2(const float *d, ptrdiff_t dl, int count, float *v, ptrdiff_t stride);
void cbam_winograd4_input_avx512(const float *d, ptrdiff_t dl, int count, float *v, ptrdiff_t stride);
#endif

void cbam_winograd4_output_portable(const float *m, ptrdiff_t stride, int count, float bias, int relu, float *rows,
                                    ptrdiff_t lr);
#if defined(__x86_64__)
void cbam_winograd4_output_avx2(const float *m, ptrdiff_t stride, int count, float bias, int relu, float *rows,
                                ptrdiff_t lr);
void cbam_winograd4_output_avx512(const float *m, ptrdiff_t stride, int count, float bias, int relu, float *rows,
                                  ptrdiff_t lr);
#endif

#endif
