// The engine's GEMM kernel (Sources/CBAMKernels) against OpenBLAS's sgemm on the shapes the engine's convolutions
// give it, one thread, each instruction set this CPU runs. Built and run by tools/bench-gemm.sh.
// OpenBLAS is timed as the engine used it before: cblas_sgemm on unpacked weights (it packs both operands per call);
// the kernel on weights packed once, as the engine now holds them.
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "CBAMKernels.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

// m x k weights times k x n columns: Winograd's per-position GEMMs (m = Cout, k = Cin, n = tiles), im2col tiles of
// 3x3 stride-2 convolutions (k = 9 Cin), 1x1 convolutions of ResNet-50 (n = pixels), tiny CIFAR layers.
static const int shapes[][3] = {
    {48, 48, 600},  {96, 96, 300},   {192, 192, 128}, {384, 384, 64},  {96, 432, 256}, {384, 1728, 64},
    {256, 64, 3136}, {64, 576, 3136}, {2048, 512, 49}, {512, 4608, 49}, {16, 16, 1024}, {16, 16, 224}, {32, 32, 224}, {64, 64, 224}, {64, 64, 8},
};

int main(void) {
    openblas_set_num_threads(1);
    printf("| m | k | n | OpenBLAS | portable | avx2 | avx512 | max abs difference |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
        float *c = malloc(sizeof(float) * m * n), *c2 = malloc(sizeof(float) * m * n);
        float *packed = malloc(sizeof(float) * cbam_gemm_packed_count(m, k));
        srand(1);
        for (int i = 0; i < m * k; i++) a[i] = (float)(rand() / (double)RAND_MAX) - 0.5f;
        for (int i = 0; i < k * n; i++) b[i] = (float)(rand() / (double)RAND_MAX) - 0.5f;
        cbam_gemm_pack(a, k, m, k, packed);
        const double flops = 2.0 * m * n * k;
        const int iterations = (int)(2e9 / flops) + 1;
        double best[4] = {1e30, 1e30, 1e30, 1e30};
        for (int round = 0; round < 5; round++) {
            double t = now();
            for (int i = 0; i < iterations; i++)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1, a, k, b, n, 0, c, n);
            t = (now() - t) / iterations;
            if (t < best[0]) best[0] = t;
            for (int isa = 0; isa < 3; isa++) {
                if (!cbam_isa_supported((cbam_isa)isa)) continue;
                t = now();
                for (int i = 0; i < iterations; i++)
                    cbam_gemm_packed_isa((cbam_isa)isa, m, n, k, packed, b, n, c2, n, NULL, 0);
                t = (now() - t) / iterations;
                if (t < best[1 + isa]) best[1 + isa] = t;
            }
        }
        double worst = 0;
        for (int i = 0; i < m * n; i++) worst = fmax(worst, fabs((double)c[i] - (double)c2[i]));
        printf("| %d | %d | %d |", m, k, n);
        for (int e = 0; e < 4; e++) {
            if (best[e] < 1e30) printf(" %.1f |", flops / best[e] * 1e-9);
            else printf(" - |");
        }
        printf(" %.1e |\n", worst);
        free(a), free(b), free(c), free(c2), free(packed);
    }
    printf("\nGFLOP/s, best of 5 rounds of about 2 GFLOP each; the last column compares the widest instruction set's "
           "result with OpenBLAS's.\n");
    return 0;
}
