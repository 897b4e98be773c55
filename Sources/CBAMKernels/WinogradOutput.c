// Winograd F(4x4, 3x3)'s output transform, Y = Aᵀ M A + bias (ReLU'd when asked), for many tiles of one output
// channel, one vector lane per tile: tile k's 36 values at m[(i·6 + j)·stride + k]; its 4x4 outputs go to
// rows[a·lr + 4k + c] (output row a, column c of the tile: each output row's tiles side by side, as they lie in the
// map). AVX-512F takes 16 tiles a step, AVX2 8, portable C 4; each step writes whole vectors of 4 x (tiles a step)
// floats per row, so a row of `rows` needs room for `count` rounded up to 16 tiles.
//
// Aᵀ, on six values m0..m5: [1, 1, 1, 1, 1, 0], [0, 1, −1, 2, −2, 0], [0, 1, 1, 4, 4, 0], [0, 1, −1, 8, −8, 1].
#include "CBAMKernels.h"
#include "Kernels.h"

#include <string.h>

#define AT6(x, y)                                                                                                     \
    do {                                                                                                              \
        const __typeof__(x[0]) p_ = x[1] + x[2], q_ = x[1] - x[2], r_ = x[3] + x[4], s_ = x[3] - x[4];                \
        y[0] = x[0] + p_ + r_;                                                                                        \
        y[1] = q_ + 2 * s_;                                                                                           \
        y[2] = p_ + 4 * r_;                                                                                           \
        y[3] = q_ + 8 * s_ + x[5];                                                                                    \
    } while (0)

// Y of one step's tiles: t[i·4 + c] (Aᵀ along row i), then y[a·4 + c] with the bias and the floor applied.
#define TRANSFORM(V, LOAD, SPLAT, MAX)                                                                                \
    V t[24], y[16];                                                                                                   \
    for (int i = 0; i < 6; i++) {                                                                                     \
        V x[6], o[4];                                                                                                 \
        for (int j = 0; j < 6; j++) x[j] = LOAD(m + (ptrdiff_t)(i * 6 + j) * stride + k);                            \
        AT6(x, o);                                                                                                    \
        for (int c = 0; c < 4; c++) t[i * 4 + c] = o[c];                                                              \
    }                                                                                                                 \
    const V add = SPLAT(bias), floor = SPLAT(relu ? 0.0f : -__builtin_inff());                                        \
    for (int c = 0; c < 4; c++) {                                                                                     \
        V x[6], o[4];                                                                                                 \
        for (int i = 0; i < 6; i++) x[i] = t[i * 4 + c];                                                              \
        AT6(x, o);                                                                                                    \
        for (int a = 0; a < 4; a++) y[a * 4 + c] = MAX(o[a] + add, floor);                                            \
    }

typedef float v4 __attribute__((vector_size(16)));

static inline v4 load4(const float *p) { v4 v; memcpy(&v, p, sizeof v); return v; }
static inline v4 splat4(float x) { return (v4){x, x, x, x}; }
static inline v4 max4(v4 a, v4 b) { return __builtin_elementwise_max(a, b); }

void cbam_winograd4_output_portable(const float *m, ptrdiff_t stride, int count, float bias, int relu, float *rows,
                                    ptrdiff_t lr) {
    for (int k = 0; k < count; k += 4) {
        TRANSFORM(v4, load4, splat4, max4)
        for (int a = 0; a < 4; a++) {
            float *row = rows + a * lr + 4 * k;
            for (int tile = 0; tile < 4; tile++) {
                for (int c = 0; c < 4; c++) row[4 * tile + c] = y[a * 4 + c][tile];
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

typedef float v8 __attribute__((vector_size(32)));

__attribute__((target("avx2,fma"))) static inline v8 load8(const float *p) { return (v8)_mm256_loadu_ps(p); }
__attribute__((target("avx2,fma"))) static inline v8 splat8(float x) { return (v8)_mm256_set1_ps(x); }
__attribute__((target("avx2,fma"))) static inline v8 max8(v8 a, v8 b) { return (v8)_mm256_max_ps((__m256)a, (__m256)b); }

__attribute__((target("avx2,fma")))
void cbam_winograd4_output_avx2(const float *m, ptrdiff_t stride, int count, float bias, int relu, float *rows,
                                ptrdiff_t lr) {
    for (int k = 0; k < count; k += 8) {
        TRANSFORM(v8, load8, splat8, max8)
        for (int a = 0; a < 4; a++) {
            // Columns c0..c3 of eight tiles → the tiles' four values side by side: a 4x4 transpose in each 128-bit
            // half (tiles 0-3 and 4-7 in u0..u3 as {0, 4}, {1, 5}, {2, 6}, {3, 7}), then the halves put in order.
            const __m256 c0 = (__m256)y[a * 4], c1 = (__m256)y[a * 4 + 1], c2 = (__m256)y[a * 4 + 2], c3 = (__m256)y[a * 4 + 3];
            const __m256 t0 = _mm256_unpacklo_ps(c0, c1), t1 = _mm256_unpackhi_ps(c0, c1);
            const __m256 t2 = _mm256_unpacklo_ps(c2, c3), t3 = _mm256_unpackhi_ps(c2, c3);
            const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            float *row = rows + a * lr + 4 * k;
            _mm256_storeu_ps(row, _mm256_permute2f128_ps(u0, u1, 0x20));
            _mm256_storeu_ps(row + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
            _mm256_storeu_ps(row + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
            _mm256_storeu_ps(row + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
        }
    }
}

typedef float v16 __attribute__((vector_size(64)));

__attribute__((target("avx512f"))) static inline v16 splat16(float x) { return (v16)_mm512_set1_ps(x); }
__attribute__((target("avx512f"))) static inline v16 max16(v16 a, v16 b) { return (v16)_mm512_max_ps((__m512)a, (__m512)b); }

__attribute__((target("avx512f")))
void cbam_winograd4_output_avx512(const float *m, ptrdiff_t stride, int count, float bias, int relu, float *rows,
                                  ptrdiff_t lr) {
    for (int k = 0; k < count; k += 16) {
        const __mmask16 lanes = count - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - k)) - 1);
#define LOAD16(p) ((v16)_mm512_maskz_loadu_ps(lanes, (p)))
        TRANSFORM(v16, LOAD16, splat16, max16)
#undef LOAD16
        for (int a = 0; a < 4; a++) {
            // A 4x4 transpose in each 128-bit lane (u0..u3 hold tiles {0,4,8,12}, {1,5,9,13}, {2,6,10,14},
            // {3,7,11,15}), then the lanes put in order.
            const __m512 c0 = (__m512)y[a * 4], c1 = (__m512)y[a * 4 + 1], c2 = (__m512)y[a * 4 + 2], c3 = (__m512)y[a * 4 + 3];
            const __m512 t0 = _mm512_unpacklo_ps(c0, c1), t1 = _mm512_unpackhi_ps(c0, c1);
            const __m512 t2 = _mm512_unpacklo_ps(c2, c3), t3 = _mm512_unpackhi_ps(c2, c3);
            const __m512 u0 = _mm512_shuffle_ps(t0, t2, 0x44), u1 = _mm512_shuffle_ps(t0, t2, 0xEE);
            const __m512 u2 = _mm512_shuffle_ps(t1, t3, 0x44), u3 = _mm512_shuffle_ps(t1, t3, 0xEE);
            const __m512 v0 = _mm512_shuffle_f32x4(u0, u1, 0x44), v1 = _mm512_shuffle_f32x4(u0, u1, 0xEE);
            const __m512 v2 = _mm512_shuffle_f32x4(u2, u3, 0x44), v3 = _mm512_shuffle_f32x4(u2, u3, 0xEE);
            float *row = rows + a * lr + 4 * k;
            _mm512_storeu_ps(row, _mm512_shuffle_f32x4(v0, v2, 0x88));
            _mm512_storeu_ps(row + 16, _mm512_shuffle_f32x4(v0, v2, 0xDD));
            _mm512_storeu_ps(row + 32, _mm512_shuffle_f32x4(v1, v3, 0x88));
            _mm512_storeu_ps(row + 48, _mm512_shuffle_f32x4(v1, v3, 0xDD));
        }
    }
}
#endif

void cbam_winograd4_output(const float *m, ptrdiff_t stride, int count, float bias, int relu, float *rows, ptrdiff_t lr) {
    switch (cbam_isa_selected()) {
#if defined(__x86_64__)
    case CBAM_ISA_AVX512: cbam_winograd4_output_avx512(m, stride, count, bias, relu, rows, lr); return;
    case CBAM_ISA_AVX2: cbam_winograd4_output_avx2(m, stride, count, bias, relu, rows, lr); return;
#endif
    default: cbam_winograd4_output_portable(m, stride, count, bias, relu, rows, lr); return;
    }
}
