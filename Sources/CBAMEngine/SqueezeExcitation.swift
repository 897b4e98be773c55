/// Squeeze-and-excitation (Hu et al., CVPR 2018): `M_c(F) = σ(W2 · relu(W1 · AvgPool(F) + b1) + b2)`, one gate per
/// channel from the average-pooled feature alone; no spatial map.
struct SqueezeExcitation {
    let channels: Int
    let hidden: Int
    /// `[hidden, channels]` and `[channels, hidden]`, row-major; biases are zero when the checkpoint has none.
    let w1: [Float], b1: [Float]
    let w2: [Float], b2: [Float]

    /// Floats of scratch for a batch: the pooled vectors and the hidden layer of each image.
    static func scratchCount(channels: Int, hidden: Int, batch: Int) -> Int { batch * (channels + hidden) }

    func multiplyAdds() -> Int { 2 * channels * hidden }

    /// Writes `M_c` of each image to `map[n·C + c]`, values in (0, 1).
    func callAsFunction(_ feature: FeatureMap, into map: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        precondition(feature.channels == channels, "SqueezeExcitation: \(feature.channels) channels, expected \(channels)")
        let n = feature.batch
        let pooled = scratch, hiddenOut = scratch + n * channels
        globalAveragePool(feature, into: pooled)
        twoLayerMLP(rows: n, channels: channels, hidden: hidden, w1: w1, b1: b1, w2: w2, input: pooled,
                    hiddenOut: hiddenOut, output: map)
        for image in 0..<n {
            for c in 0..<channels { map[image * channels + c] = sigmoid(map[image * channels + c] + b2[c]) }
        }
    }
}
