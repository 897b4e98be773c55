/// Efficient channel attention (Wang et al., CVPR 2020): `M_c(F) = σ(conv1d_k(AvgPool(F)))`, a 1-D convolution of
/// size k (zero padding k/2, no bias) across the channel axis of the average-pooled feature; no spatial map.
struct EfficientChannelAttention {
    let channels: Int
    let kernel: Int
    /// `[kernel]`.
    let weight: [Float]

    static func scratchCount(channels: Int, batch: Int) -> Int { batch * channels }

    func multiplyAdds() -> Int { channels * kernel }

    /// Writes `M_c` of each image to `map[n·C + c]`, values in (0, 1).
    func callAsFunction(_ feature: FeatureMap, into map: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        precondition(feature.channels == channels, "EfficientChannelAttention: \(feature.channels) channels, expected \(channels)")
        let n = feature.batch, r = kernel / 2
        globalAveragePool(feature, into: scratch)
        for image in 0..<n {
            let pooled = scratch + image * channels
            for c in 0..<channels {
                var acc: Float = 0
                for t in max(0, r - c)..<min(kernel, channels + r - c) { acc += weight[t] * pooled[c + t - r] }
                map[image * channels + c] = sigmoid(acc)
            }
        }
    }
}
