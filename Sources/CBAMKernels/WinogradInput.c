// Winograd F(4x4, 3x3)'s input transform, V = Bᵀ d B, on tiles gathered by the engine (Winograd.swift): the 36
// values of tile k at d[(i·6 + j)·dl + k] (input row i, column j of the 6x6 tile), the 36 results at
// v[(i·6 + j)·stride + k]. Many tiles side by side, one vector lane per tile: AVX-512F 16 (the last vector masked),
// AVX2 8 and portable C 4 (vector extensions) a step; the latter two may write up to 7 floats past `count`, which the
// engine's buffers leave room for.
//
// Bᵀ, on six values x0..x5:
//   [4, 0, −5, 0, 1, 0], [0, −4, −4, 1, 1, 0], [0, 4, −4, −1, 1, 0], [0, −2, −1, 2, 1, 0], [0, 2, −1, −2, 1, 0],
//   [0, 4, 0, −5, 0, 1].
#include "CBAMKernels.h"
#include "Kernels.h"

#include <string.h>

// The same six-point transform for any vector type with + − and scalar products.
#define BT6(T, x, y)                                                                                                  \
    do {                                                                                                              \
        const T a_ = x[4] - 4 * x[2], b_ = 4 * x[1] - x[3], c_ = x[4] - x[2], d_ = 2 * (x[1] - x[3]);                \
        y[0] = 4 * x[0] - 5 * x[2] + x[4];                                                                            \
        y[1] = a_ - b_;                                                                                               \
        y[2] = a_ + b_;                                                                                               \
        y[3] = c_ - d_;                                                                                               \
        y[4] = c_ + d_;                                                                                               \
        y[5] = 4 * x[1] - 5 * x[3] + x[5];                                                                            \
    } while (0)

typedef float v4 __attribute__((vector_size(16)));

static inline v4 load4(const float *p) { v4 v; memcpy(&v, p, sizeof v); return v; }
static inline void store4(float *p, v4 v) { memcpy(p, &v, sizeof v); }

void cbam_winograd4_input_portable(const float *d, ptrdiff_t dl, int count, float *v, ptrdiff_t stride) {
    for (int k = 0; k < count; k += 4) {
        v4 t[36];
        for (int j = 0; j < 6; j++) {  // Bᵀ down each column ...
            v4 x[6], y[6];
            for (int i = 0; i < 6; i++) x[i] = load4(d + (ptrdiff_t)(i * 6 + j) * dl + k);
            BT6(v4, x, y);
            for (int i = 0; i < 6; i++) t[i * 6 + j] = y[i];
        }
        for (int i = 0; i < 6; i++) {  // ... then along each row.
            v4 y[6];
            BT6(v4, (t + i * 6), y);
            for (int j = 0; j < 6; j++) store4(v + (ptrdiff_t)(i * 6 + j) * stride + k, y[j]);
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

__attribute__((target("avx2,fma")))
void cbam_winograd4_input_avx2(const float *d, ptrdiff_t dl, int count, float *v, ptrdiff_t stride) {
    for (int k = 0; k < count; k += 8) {
        v8 t[36];
        for (int j = 0; j < 6; j++) {
            v8 x[6], y[6];
            for (int i = 0; i < 6; i++) x[i] = (v8)_mm256_loadu_ps(d + (ptrdiff_t)(i * 6 + j) * dl + k);
            BT6(v8, x, y);
            for (int i = 0; i < 6; i++) t[i * 6 + j] = y[i];
        }
        for (int i = 0; i < 6; i++) {
            v8 y[6];
            BT6(v8, (t + i * 6), y);
            for (int j = 0; j < 6; j++) _mm256_storeu_ps(v + (ptrdiff_t)(i * 6 + j) * stride + k, (__m256)y[j]);
        }
    }
}

__attribute__((target("avx512f")))
void cbam_winograd4_input_avx512(const float *d, ptrdiff_t dl, int count, float *v, ptrdiff_t stride) {
    for (int k = 0; k < count; k += 16) {
        const __mmask16 lanes = count - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - k)) - 1);
        v16 t[36];
        for (int j = 0; j < 6; j++) {
            v16 x[6], y[6];
            for (int i = 0; i < 6; i++) x[i] = (v16)_mm512_maskz_loadu_ps(lanes, d + (ptrdiff_t)(i * 6 + j) * dl + k);
            BT6(v16, x, y);
            for (int i = 0; i < 6; i++) t[i * 6 + j] = y[i];
        }
        for (int i = 0; i < 6; i++) {
            v16 y[6];
            BT6(v16, (t + i * 6), y);
            for (int j = 0; j < 6; j++) _mm512_mask_storeu_ps(v + (ptrdiff_t)(i * 6 + j) * stride + k, lanes, (__m512)y[j]);
        }
    }
}
#endif

void cbam_winograd4_input(const float *d, ptrdiff_t dl, int count, float *v, ptrdiff_t stride) {
    switch (cbam_isa_selected()) {
#if defined(__x86_64__)
    case CBAM_ISA_AVX512: cbam_winograd4_input_avx512(d, dl, count, v, stride); return;
    case CBAM_ISA_AVX2: cbam_winograd4_input_avx2(d, dl, count, v, stride); return;
#endif
    default: cbam_winograd4_input_portable(d, dl, count, v, stride); return;
    }
}
