#ifndef CBAM_KERNELS_H
#define CBAM_KERNELS_H

#include <stddef.h>

// The engine's GEMM on prepacked weights: C[m x n] = epilogue(A[m x k] . B[k x n]), all row-major.
// A (a layer's weights) is packed once, at load, into panels of CBAM_GEMM_ROWS rows (`cbam_gemm_pack`); B (im2col
// columns, a 1x1 convolution's input, Winograd's transformed tiles) is read where it lies, `ldb` floats a row.
// The epilogue adds `bias[i]` to row i when `bias` is not NULL and clamps at 0 when `relu` is not 0, while the
// output tile is still in registers. The instruction set is chosen once, at the first call, from what the CPU
// supports (AVX-512F, AVX2 + FMA, or portable C); `CBAM_KERNELS=portable|avx2|avx512` chooses a lower one.

enum { CBAM_GEMM_ROWS = 6 };

typedef enum {
    CBAM_ISA_PORTABLE = 0,
    CBAM_ISA_AVX2 = 1,
    CBAM_ISA_AVX512 = 2,
} cbam_isa;

/// Floats the packed form of an m x k matrix takes (m rounded up to whole panels).
size_t cbam_gemm_packed_count(int m, int k);

/// Packs `a` (m x k, `lda` floats a row) into `packed` (`cbam_gemm_packed_count(m, k)` floats): panel p holds
/// rows 6p..6p+5, column by column; rows past m are zero.
void cbam_gemm_pack(const float *a, ptrdiff_t lda, int m, int k, float *packed);

/// C = epilogue(A . B) with the selected instruction set. `c` must not overlap `b` or `packed`.
void cbam_gemm_packed(int m, int n, int k, const float *packed, const float *b, ptrdiff_t ldb,
                      float *c, ptrdiff_t ldc, const float *bias, int relu);

/// The same with a given instruction set (tests compare them); it must be one that `cbam_isa_supported` accepts.
void cbam_gemm_packed_isa(cbam_isa isa, int m, int n, int k, const float *packed, const float *b, ptrdiff_t ldb,
                          float *c, ptrdiff_t ldc, const float *bias, int relu);

/// Whether this CPU (and this build) can run kernels of `isa`.
int cbam_isa_supported(cbam_isa isa);

/// The instruction set `cbam_gemm_packed` uses.
cbam_isa cbam_isa_selected(void);

/// Winograd F(4x4, 3x3)'s input transform V = Bᵀ d B of `count` tiles, one per vector lane: tile k's 36 gathered
/// values at d[(i·6 + j)·dl + k], its 36 results to v[(i·6 + j)·stride + k], with the selected instruction set. The
/// AVX2 and portable variants write whole vectors of 8 and 4 tiles: up to 7 floats past `count` in each row of `v`.
void cbam_winograd4_input(const float *d, ptrdiff_t dl, int count, float *v, ptrdiff_t stride);

/// Winograd F(4x4, 3x3)'s output transform Y = Aᵀ M A + bias (clamped at 0 when `relu`) of `count` tiles of one
/// output channel: tile k's 36 values at m[(i·6 + j)·stride + k], its output row a at rows[a·lr + 4k ..< 4k + 4],
/// with the selected instruction set. Whole steps of 16 tiles are written: `lr` must be at least 4·count rounded up
/// to 64; the AVX2 and portable variants read up to 7 floats past `count` in each row of `m`.
void cbam_winograd4_output(const float *m, ptrdiff_t stride, int count, float bias, int relu, float *rows, ptrdiff_t lr);

/// The end of an attention block on one plane: out[p] = max(f[p]·scale·spatial[p] + identity[p], 0) for p < count,
/// with spatial[p] taken as 1 when `spatial` is NULL, with the selected instruction set. `out` may be `f`.
void cbam_attention_finish(const float *f, float scale, const float *spatial, const float *identity, int count,
                           float *out);

/// The sum and the maximum of x[0 ..< count] in one pass (the maximum of nothing is -infinity), with the selected
/// instruction set.
void cbam_sum_and_max(const float *x, int count, float *sum, float *max);

/// CBAM's spatial pools over `count` pixels of one image: mean[p] and max[p] over c < channels of
/// planes[c·stride + p]·scale[c], with the selected instruction set.
void cbam_channel_mean_and_max(const float *planes, ptrdiff_t stride, int channels, const float *scale, int count,
                               float *mean, float *max);

/// `steps` steps of twelve independent vector multiply-add chains (x = x·0.5 + 1, chain i from i/16) with the
/// selected instruction set, nothing read from memory: timed, the core's multiply-add peak. Returns the
/// floating-point operations done (2 a lane, chain and step); leaves the sum of the chains' lanes in `*sum`.
double cbam_fma_chains(long steps, float *sum);

/// The same with a given instruction set; it must be one that `cbam_isa_supported` accepts.
double cbam_fma_chains_isa(cbam_isa isa, long steps, float *sum);

/// "portable", "avx2" or "avx512".
const char *cbam_isa_name(cbam_isa isa);

#endif
