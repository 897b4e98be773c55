// The attention modules' passes over a feature map's planes: the channel pools (sum and maximum of a plane), the
// spatial pools (mean and maximum across channels, pixel by pixel) and the refine that ends every attention block,
// out = max(F · M_c · M_s + identity, 0). Each is a stream over memory with a few operations per float. In Swift
// (built for baseline x86-64, 4-float SSE vectors) the refine ran scalar, the channel pools' two reduction chains
// waited on their own latency, below what memory delivers, and the spatial pools ran at a quarter of an AVX-512
// vector.
#include "CBAMKernels.h"
#include "Kernels.h"

#include <math.h>

static void finish_portable(const float *f, float scale, const float *spatial, const float *identity, int count,
                            float *out) {
    for (int p = 0; p < count; p++) {
        const float x = f[p] * scale * (spatial != NULL ? spatial[p] : 1.0f) + identity[p];
        out[p] = x > 0.0f ? x : 0.0f;
    }
}

static void sum_and_max_portable(const float *x, int count, float *sum, float *max) {
    float s[4] = {0, 0, 0, 0}, m[4] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY};
    int p = 0;
    for (; p + 4 <= count; p += 4) {
        for (int j = 0; j < 4; j++) {
            s[j] += x[p + j];
            m[j] = x[p + j] > m[j] ? x[p + j] : m[j];
        }
    }
    for (; p < count; p++) {
        s[0] += x[p];
        m[0] = x[p] > m[0] ? x[p] : m[0];
    }
    *sum = (s[0] + s[1]) + (s[2] + s[3]);
    const float m01 = m[0] > m[1] ? m[0] : m[1], m23 = m[2] > m[3] ? m[2] : m[3];
    *max = m01 > m23 ? m01 : m23;
}

// Pixels per block of the spatial pools: 2 KB of each plane, 4 KB of sums and maxima (in L1); each plane is read in
// runs of 2 KB, which the prefetchers follow (eight pixels across every channel at a time, an order tried before,
// read 32 bytes from each of C planes in turn: C pages and C streams at once).
enum { POOL_BLOCK = 512 };

static void mean_and_max_portable(const float *planes, ptrdiff_t stride, int channels, const float *scale, int count,
                                  float *mean, float *max) {
    for (int start = 0; start < count; start += POOL_BLOCK) {
        const int end = count - start < POOL_BLOCK ? count : start + POOL_BLOCK;
        for (int p = start; p < end; p++) mean[p] = 0.0f, max[p] = -INFINITY;
        for (int c = 0; c < channels; c++) {
            const float *x = planes + c * stride;
            for (int p = start; p < end; p++) {
                const float v = x[p] * scale[c];
                mean[p] += v;
                max[p] = v > max[p] ? v : max[p];
            }
        }
        const float inverse = 1.0f / (float)channels;
        for (int p = start; p < end; p++) mean[p] *= inverse;
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2,fma")))
static void mean_and_max_avx2(const float *planes, ptrdiff_t stride, int channels, const float *scale, int count,
                              float *mean, float *max) {
    const int whole = count / 8 * 8;
    for (int start = 0; start < whole; start += POOL_BLOCK) {
        const int end = whole - start < POOL_BLOCK ? whole : start + POOL_BLOCK;
        for (int p = start; p < end; p += 8) {
            _mm256_storeu_ps(mean + p, _mm256_setzero_ps());
            _mm256_storeu_ps(max + p, _mm256_set1_ps(-INFINITY));
        }
        int c = 0;
        for (; c + 4 <= channels; c += 4) {
            const float *x0 = planes + c * stride, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
            const __m256 s0 = _mm256_set1_ps(scale[c]), s1 = _mm256_set1_ps(scale[c + 1]);
            const __m256 s2 = _mm256_set1_ps(scale[c + 2]), s3 = _mm256_set1_ps(scale[c + 3]);
            for (int p = start; p < end; p += 8) {
                const __m256 v0 = _mm256_mul_ps(_mm256_loadu_ps(x0 + p), s0);
                const __m256 v1 = _mm256_mul_ps(_mm256_loadu_ps(x1 + p), s1);
                const __m256 v2 = _mm256_mul_ps(_mm256_loadu_ps(x2 + p), s2);
                const __m256 v3 = _mm256_mul_ps(_mm256_loadu_ps(x3 + p), s3);
                const __m256 sum = _mm256_add_ps(_mm256_add_ps(v0, v1), _mm256_add_ps(v2, v3));
                const __m256 top = _mm256_max_ps(_mm256_max_ps(v0, v1), _mm256_max_ps(v2, v3));
                _mm256_storeu_ps(mean + p, _mm256_add_ps(_mm256_loadu_ps(mean + p), sum));
                _mm256_storeu_ps(max + p, _mm256_max_ps(_mm256_loadu_ps(max + p), top));
            }
        }
        for (; c < channels; c++) {
            const float *x = planes + c * stride;
            const __m256 s = _mm256_set1_ps(scale[c]);
            for (int p = start; p < end; p += 8) {
                const __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + p), s);
                _mm256_storeu_ps(mean + p, _mm256_add_ps(_mm256_loadu_ps(mean + p), v));
                _mm256_storeu_ps(max + p, _mm256_max_ps(_mm256_loadu_ps(max + p), v));
            }
        }
        const __m256 inverse = _mm256_set1_ps(1.0f / (float)channels);
        for (int p = start; p < end; p += 8) _mm256_storeu_ps(mean + p, _mm256_mul_ps(_mm256_loadu_ps(mean + p), inverse));
    }
    if (whole < count) mean_and_max_portable(planes + whole, stride, channels, scale, count - whole, mean + whole, max + whole);
}

__attribute__((target("avx2,fma")))
static void finish_avx2(const float *f, float scale, const float *spatial, const float *identity, int count,
                        float *out) {
    const __m256 s = _mm256_set1_ps(scale), zero = _mm256_setzero_ps();
    int p = 0;
    for (; p + 8 <= count; p += 8) {
        __m256 x = _mm256_mul_ps(_mm256_loadu_ps(f + p), s);
        if (spatial != NULL) x = _mm256_mul_ps(x, _mm256_loadu_ps(spatial + p));
        _mm256_storeu_ps(out + p, _mm256_max_ps(_mm256_add_ps(x, _mm256_loadu_ps(identity + p)), zero));
    }
    finish_portable(f + p, scale, spatial != NULL ? spatial + p : NULL, identity + p, count - p, out + p);
}

__attribute__((target("avx2,fma")))
static void sum_and_max_avx2(const float *x, int count, float *sum, float *max) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
    int p = 0;
    for (; p + 16 <= count; p += 16) {
        const __m256 a = _mm256_loadu_ps(x + p), b = _mm256_loadu_ps(x + p + 8);
        s0 = _mm256_add_ps(s0, a), s1 = _mm256_add_ps(s1, b);
        m0 = _mm256_max_ps(m0, a), m1 = _mm256_max_ps(m1, b);
    }
    float lanes[8], tops[8], restSum, restMax;
    _mm256_storeu_ps(lanes, _mm256_add_ps(s0, s1));
    _mm256_storeu_ps(tops, _mm256_max_ps(m0, m1));
    sum_and_max_portable(x + p, count - p, &restSum, &restMax);
    float total = restSum, top = restMax;
    for (int j = 0; j < 8; j++) {
        total += lanes[j];
        top = tops[j] > top ? tops[j] : top;
    }
    *sum = total, *max = top;
}

__attribute__((target("avx512f")))
static void mean_and_max_avx512(const float *planes, ptrdiff_t stride, int channels, const float *scale, int count,
                                float *mean, float *max) {
    const __m512 lowest = _mm512_set1_ps(-INFINITY);
    for (int start = 0; start < count; start += POOL_BLOCK) {
        const int end = count - start < POOL_BLOCK ? count : start + POOL_BLOCK;
#define LANES(p) (end - (p) >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (end - (p))) - 1))
        for (int p = start; p < end; p += 16) {
            _mm512_mask_storeu_ps(mean + p, LANES(p), _mm512_setzero_ps());
            _mm512_mask_storeu_ps(max + p, LANES(p), lowest);
        }
        int c = 0;
        for (; c + 4 <= channels; c += 4) {
            const float *x0 = planes + c * stride, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
            const __m512 s0 = _mm512_set1_ps(scale[c]), s1 = _mm512_set1_ps(scale[c + 1]);
            const __m512 s2 = _mm512_set1_ps(scale[c + 2]), s3 = _mm512_set1_ps(scale[c + 3]);
            for (int p = start; p < end; p += 16) {
                const __mmask16 lanes = LANES(p);
                const __m512 v0 = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, x0 + p), s0);
                const __m512 v1 = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, x1 + p), s1);
                const __m512 v2 = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, x2 + p), s2);
                const __m512 v3 = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, x3 + p), s3);
                const __m512 sum = _mm512_add_ps(_mm512_add_ps(v0, v1), _mm512_add_ps(v2, v3));
                const __m512 top = _mm512_max_ps(_mm512_max_ps(v0, v1), _mm512_max_ps(v2, v3));
                _mm512_mask_storeu_ps(mean + p, lanes, _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, mean + p), sum));
                _mm512_mask_storeu_ps(max + p, lanes, _mm512_max_ps(_mm512_mask_loadu_ps(lowest, lanes, max + p), top));
            }
        }
        for (; c < channels; c++) {
            const float *x = planes + c * stride;
            const __m512 s = _mm512_set1_ps(scale[c]);
            for (int p = start; p < end; p += 16) {
                const __mmask16 lanes = LANES(p);
                const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, x + p), s);
                _mm512_mask_storeu_ps(mean + p, lanes, _mm512_add_ps(_mm512_maskz_loadu_ps(lanes, mean + p), v));
                _mm512_mask_storeu_ps(max + p, lanes, _mm512_max_ps(_mm512_mask_loadu_ps(lowest, lanes, max + p), v));
            }
        }
        const __m512 inverse = _mm512_set1_ps(1.0f / (float)channels);
        for (int p = start; p < end; p += 16) {
            _mm512_mask_storeu_ps(mean + p, LANES(p), _mm512_mul_ps(_mm512_maskz_loadu_ps(LANES(p), mean + p), inverse));
        }
#undef LANES
    }
}

__attribute__((target("avx512f")))
static void finish_avx512(const float *f, float scale, const float *spatial, const float *identity, int count,
                          float *out) {
    const __m512 s = _mm512_set1_ps(scale), zero = _mm512_setzero_ps();
    for (int p = 0; p < count; p += 16) {
        const __mmask16 lanes = count - p >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - p)) - 1);
        __m512 x = _mm512_mul_ps(_mm512_maskz_loadu_ps(lanes, f + p), s);
        if (spatial != NULL) x = _mm512_mul_ps(x, _mm512_maskz_loadu_ps(lanes, spatial + p));
        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(lanes, identity + p));
        _mm512_mask_storeu_ps(out + p, lanes, _mm512_max_ps(x, zero));
    }
}

__attribute__((target("avx512f")))
static void sum_and_max_avx512(const float *x, int count, float *sum, float *max) {
    const __m512 lowest = _mm512_set1_ps(-INFINITY);
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, m0 = lowest, m1 = lowest;
    int p = 0;
    for (; p + 32 <= count; p += 32) {
        const __m512 a = _mm512_loadu_ps(x + p), b = _mm512_loadu_ps(x + p + 16);
        s0 = _mm512_add_ps(s0, a), s1 = _mm512_add_ps(s1, b);
        m0 = _mm512_max_ps(m0, a), m1 = _mm512_max_ps(m1, b);
    }
    for (; p < count; p += 16) {
        const __mmask16 lanes = count - p >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - p)) - 1);
        s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(lanes, x + p));
        m0 = _mm512_max_ps(m0, _mm512_mask_loadu_ps(lowest, lanes, x + p));
    }
    *sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    *max = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}
#endif

void cbam_attention_finish(const float *f, float scale, const float *spatial, const float *identity, int count,
                           float *out) {
    switch (cbam_isa_selected()) {
#if defined(__x86_64__)
    case CBAM_ISA_AVX512: finish_avx512(f, scale, spatial, identity, count, out); return;
    case CBAM_ISA_AVX2: finish_avx2(f, scale, spatial, identity, count, out); return;
#endif
    default: finish_portable(f, scale, spatial, identity, count, out); return;
    }
}

void cbam_sum_and_max(const float *x, int count, float *sum, float *max) {
    switch (cbam_isa_selected()) {
#if defined(__x86_64__)
    case CBAM_ISA_AVX512: sum_and_max_avx512(x, count, sum, max); return;
    case CBAM_ISA_AVX2: sum_and_max_avx2(x, count, sum, max); return;
#endif
    default: sum_and_max_portable(x, count, sum, max); return;
    }
}

void cbam_channel_mean_and_max(const float *planes, ptrdiff_t stride, int channels, const float *scale, int count,
                               float *mean, float *max) {
    switch (cbam_isa_selected()) {
#if defined(__x86_64__)
    case CBAM_ISA_AVX512: mean_and_max_avx512(planes, stride, channels, scale, count, mean, max); return;
    case CBAM_ISA_AVX2: mean_and_max_avx2(planes, stride, channels, scale, count, mean, max); return;
#endif
    default: mean_and_max_portable(planes, stride, channels, scale, count, mean, max); return;
    }
}
