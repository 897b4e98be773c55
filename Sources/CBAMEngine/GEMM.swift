import COpenBLAS

/// Row-major single-precision matrix product through OpenBLAS:
/// `C[m×n] = op(A)[m×k] · op(B)[k×n] + beta·C`, with `op` a transpose when asked. Only `--profile`'s sgemm peak uses
/// it; the convolutions, the attention MLPs and the classifier use the engine's own kernel on packed weights
/// (`PackedWeights`).
@inline(__always)
func gemm(m: Int, n: Int, k: Int,
          a: UnsafePointer<Float>, lda: Int, transposeA: Bool = false,
          b: UnsafePointer<Float>, ldb: Int, transposeB: Bool = false,
          c: UnsafeMutablePointer<Float>, ldc: Int, beta: Float = 0) {
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

