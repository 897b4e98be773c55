/// Squeeze-and-excitation (Hu et al., CVPR 2018): `M_c(F) = σ(W2 · relu(W1 · AvgPool(F) + b1) + b2)`, one gate per
/// channel from the average-pooled feature alone; no spatial map.
struct SqueezeExcitation {
    let mlp: ChannelMLP
    var channels: Int { mlp.channels }
    var hidden: Int { mlp.hidden }

    /// Floats of scratch for a batch: the pooled vectors, the MLP's scratch and its output, for each image.
    static func scratchCount(channels: Int, hidden: Int, batch: Int) -> Int {
        2 * batch * channels + ChannelMLP.scratchCount(channels: channels, hidden: hidden, vectors: batch)
    }

    func multiplyAdds() -> Int { 2 * channels * hidden }

    /// Writes `M_c` of each image to `map[n·C + c]`, values in (0, 1).
    func callAsFunction(_ feature: FeatureMap, into map: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>,
                        threads: Int = 1) {
        precondition(feature.channels == channels, "SqueezeExcitation: \(feature.channels) channels, expected \(channels)")
        let n = feature.batch
        let pooled = scratch, mlpOut = scratch + n * channels
        globalAveragePool(feature, into: pooled)
        mlp(pooled, vectors: n, into: mlpOut, scratch: mlpOut + n * channels, threads: threads)
        for image in 0..<n {
            for c in 0..<channels { map[image * channels + c] = sigmoid(mlpOut[c * n + image]) }
        }
    }
}
