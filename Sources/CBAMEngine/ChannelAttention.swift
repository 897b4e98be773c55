import Foundation

/// CBAM's channel attention (Woo et al., eq. 2): `M_c(F) = σ(MLP(AvgPool(F)) + MLP(MaxPool(F)))`,
/// a shared two-layer MLP `C → C/r → C` with a ReLU between.
struct ChannelAttention {
    let mlp: ChannelMLP
    var channels: Int { mlp.channels }
    var hidden: Int { mlp.hidden }

    /// Floats of scratch for a batch: both pools, the MLP's scratch and its outputs, for each image.
    static func scratchCount(channels: Int, hidden: Int, batch: Int) -> Int {
        2 * batch * 2 * channels + ChannelMLP.scratchCount(channels: channels, hidden: hidden, vectors: 2 * batch)
    }

    func parameterCount(bias: Bool) -> Int { 2 * channels * hidden + (bias ? hidden + channels : 0) }
    func multiplyAdds() -> Int { 2 * 2 * channels * hidden }

    /// Writes `M_c` of each image to `map[n·C + c]`, values in (0, 1). The pools run on `threads` threads, the MLP
    /// on `mlpThreads` (by default as many).
    func callAsFunction(_ feature: FeatureMap, into map: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                        threads: Int = 1, mlpThreads: Int? = nil) {
        precondition(feature.channels == channels, "ChannelAttention: \(feature.channels) channels, expected \(channels)")
        let n = feature.batch
        // Vectors 0..<n: average-pooled; n..<2n: max-pooled. One call of the MLP for all of them; its output is
        // `[C, 2n]`, each branch with its own `b2`.
        let pooled = scratch
        let mlpOut = pooled + 2 * n * channels
        channelPools(feature, average: pooled, maximum: pooled + n * channels, threads: threads)
        mlp(pooled, vectors: 2 * n, into: mlpOut, scratch: mlpOut + 2 * n * channels, threads: mlpThreads ?? threads)
        for image in 0..<n {
            for c in 0..<channels {
                map[image * channels + c] = sigmoid(mlpOut[c * 2 * n + image] + mlpOut[c * 2 * n + n + image])
            }
        }
    }
}

@inline(__always)
func sigmoid(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }
