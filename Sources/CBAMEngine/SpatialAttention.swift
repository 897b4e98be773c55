/// CBAM's spatial attention (Woo et al., eq. 3): `M_s(F) = σ(f^{k×k}([AvgPool_c(F); MaxPool_c(F)]))`,
/// pools across channels, then one k×k convolution from 2 channels to 1. The authors' layout (a BatchNorm after
/// the convolution, pools in the order (max, mean)) is folded into this form at load.
struct SpatialAttention {
    let kernel: Int
    /// `[2, kernel, kernel]`: the kernel over the channel mean, then over the channel max.
    let weight: [Float]
    let bias: Float

    static func scratchCount(batch: Int, height: Int, width: Int) -> Int { 2 * batch * height * width }

    func multiplyAdds(height: Int, width: Int) -> Int { 2 * kernel * kernel * height * width }

    /// Writes `M_s` of each image to `map[n·H·W + y·W + x]`, values in (0, 1), for the feature map
    /// `F' = M_c ⊗ F` (the channel-refined feature; `channelMap` is applied on the fly, `F'` is never stored).
    func callAsFunction(_ feature: FeatureMap, channelMap: UnsafePointer<Float>, into map: UnsafeMutablePointer<Float>,
                        scratch: UnsafeMutablePointer<Float>) {
        let (n, hw, c) = (feature.batch, feature.pixels, feature.channels)
        let mean = scratch, mx = scratch + n * hw
        for image in 0..<n {
            let sum = mean + image * hw, top = mx + image * hw
            sum.update(repeating: 0, count: hw)
            top.update(repeating: -.infinity, count: hw)
            for ch in 0..<c {
                let scale = channelMap[image * c + ch]
                let src = feature.data + (ch * n + image) * hw
                for p in 0..<hw {
                    let v = src[p] * scale
                    sum[p] += v
                    top[p] = max(top[p], v)
                }
            }
            for p in 0..<hw { sum[p] /= Float(c) }
        }
        let (h, w, k, r) = (feature.height, feature.width, kernel, kernel / 2)
        weight.withUnsafeBufferPointer { wt in
            for image in 0..<n {
                let out = map + image * hw
                for y in 0..<h {
                    for x in 0..<w {
                        var acc = bias
                        for plane in 0..<2 {
                            let src = (plane == 0 ? mean : mx) + image * hw
                            let kw = wt.baseAddress! + plane * k * k
                            for ky in max(0, r - y)..<min(k, h + r - y) {
                                let row = src + (y + ky - r) * w
                                for kx in max(0, r - x)..<min(k, w + r - x) { acc += kw[ky * k + kx] * row[x + kx - r] }
                            }
                        }
                        out[y * w + x] = sigmoid(acc)
                    }
                }
            }
        }
    }
}
