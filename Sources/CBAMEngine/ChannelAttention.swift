import Foundation

/// CBAM's channel attention (Woo et al., eq. 2): `M_c(F) = σ(MLP(AvgPool(F)) + MLP(MaxPool(F)))`,
/// a shared two-layer MLP `C → C/r → C` with a ReLU between.
struct ChannelAttention {
    let channels: Int
    let hidden: Int
    /// `[hidden, channels]` and `[channels, hidden]`, row-major; biases are zero when the checkpoint has none.
    let w1: [Float], b1: [Float]
    let w2: [Float], b2: [Float]

    /// Floats of scratch for a batch: both pools, the hidden layer and the MLP outputs of each image.
    static func scratchCount(channels: Int, hidden: Int, batch: Int) -> Int { 2 * batch * (2 * channels + hidden) }

    func parameterCount(bias: Bool) -> Int { 2 * channels * hidden + (bias ? hidden + channels : 0) }
    func multiplyAdds() -> Int { 2 * 2 * channels * hidden }

    /// Writes `M_c` of each image to `map[n·C + c]`, values in (0, 1).
    func callAsFunction(_ feature: FeatureMap, into map: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                        threads: Int = 1) {
        precondition(feature.channels == channels, "ChannelAttention: \(feature.channels) channels, expected \(channels)")
        let n = feature.batch
        // Rows 0..<n: average-pooled vectors; rows n..<2n: max-pooled. One GEMM per MLP layer for all of them.
        let pooled = scratch
        let hiddenOut = pooled + 2 * n * channels
        let mlpOut = hiddenOut + 2 * n * hidden
        channelPools(feature, average: pooled, maximum: pooled + n * channels, threads: threads)
        twoLayerMLP(rows: 2 * n, channels: channels, hidden: hidden, w1: w1, b1: b1, w2: w2, input: pooled,
                    hiddenOut: hiddenOut, output: mlpOut)
        for image in 0..<n {
            let avg = mlpOut + image * channels, mx = mlpOut + (n + image) * channels
            for c in 0..<channels {
                // Each MLP branch adds its own output bias.
                map[image * channels + c] = sigmoid((avg[c] + b2[c]) + (mx[c] + b2[c]))
            }
        }
    }
}

/// `output = W2 · relu(W1 · input + b1)` for `rows` vectors of `channels` (`W1` is `[hidden, channels]`, `W2`
/// `[channels, hidden]`, row-major), one GEMM per layer: the MLP of CBAM's channel attention and of SE, whose callers
/// add `b2` (CBAM once per pooled branch) before the sigmoid.
func twoLayerMLP(rows: Int, channels: Int, hidden: Int, w1: [Float], b1: [Float], w2: [Float],
                 input: UnsafePointer<Float>, hiddenOut: UnsafeMutablePointer<Float>, output: UnsafeMutablePointer<Float>) {
    w1.withUnsafeBufferPointer { w in
        gemm(m: rows, n: hidden, k: channels, a: input, lda: channels, b: w.baseAddress!, ldb: channels, transposeB: true,
             c: hiddenOut, ldc: hidden)
    }
    for row in 0..<rows {
        for j in 0..<hidden { hiddenOut[row * hidden + j] = max(hiddenOut[row * hidden + j] + b1[j], 0) }
    }
    w2.withUnsafeBufferPointer { w in
        gemm(m: rows, n: channels, k: hidden, a: hiddenOut, lda: hidden, b: w.baseAddress!, ldb: hidden, transposeB: true,
             c: output, ldc: channels)
    }
}

@inline(__always)
func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
