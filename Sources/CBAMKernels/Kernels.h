// The instruction-set variants behind cbam_gemm_packed and the Winograd transforms (same contracts); the dispatchers
// pick one.
#ifndef CBAM_KERNELS_INTERNAL_H
#define CBAM_KERNELS_INTERNAL_H

#include <stddef.h>

// How far ahead of its multiply-adds a GEMM kernel prefetches the packed weights, in k steps (6 floats each): a
// layer's weights are read once per pass, mostly from memory, and where a product has few columns (ResNet-50's 7x7
// maps at batch 1) the kernel waits on them. Replaying a ResNet-50 pass's products, 32-256 steps all gained 2-4 %.
enum { CBAM_PREFETCH_STEPS = 96 };

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
