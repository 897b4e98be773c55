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
            channelMeanAndMax(feature, image: image, scale: channelMap + image * c, mean: mean + image * hw, max: mx + image * hw)
        }
        weight.withUnsafeBufferPointer { wt in
            for image in 0..<n {
                let out = map + image * hw
                out.update(repeating: bias, count: hw)
                convolveAccumulate(mean + image * hw, kernel: wt.baseAddress!, height: feature.height, width: feature.width, into: out)
                convolveAccumulate(mx + image * hw, kernel: wt.baseAddress! + kernel * kernel, height: feature.height, width: feature.width, into: out)
                for p in 0..<hw { out[p] = sigmoid(out[p]) }
            }
        }
    }

    /// `out += kernel ∗ plane` with zero padding k/2 ("same" size), one kernel tap at a time over whole rows.
    private func convolveAccumulate(_ plane: UnsafePointer<Float>, kernel w: UnsafePointer<Float>, height h: Int, width: Int,
                                    into out: UnsafeMutablePointer<Float>) {
        let (k, r) = (kernel, kernel / 2)
        for y in 0..<h {
            let row = out + y * width
            for ky in max(0, r - y)..<min(k, h + r - y) {
                let source = plane + (y + ky - r) * width
                for kx in 0..<k {
                    let tap = w[ky * k + kx]
                    // Output columns x whose input column x + kx − r lies in [0, width).
                    let x0 = max(0, r - kx), x1 = min(width, width + r - kx)
                    if x0 >= x1 { continue }
                    axpy(tap, source + (x0 + kx - r), row + x0, count: x1 - x0)
                }
            }
        }
    }
}

/// CBAM's pools across channels of `F' = scale ⊗ F` for one image: `mean[p]`, `max[p]` over channels.
func channelMeanAndMax(_ feature: FeatureMap, image: Int, scale: UnsafePointer<Float>,
                       mean: UnsafeMutablePointer<Float>, max top: UnsafeMutablePointer<Float>) {
    let (n, hw, c) = (feature.batch, feature.pixels, feature.channels)
    let inverse = 1 / Float(c)
    var p = 0
    // Eight pixels at a time across all channels, accumulators in registers.
    while p + 8 <= hw {
        var sum = SIMD8<Float>(), best = SIMD8<Float>(repeating: -.infinity)
        for ch in 0..<c {
            let v = UnsafeRawPointer(feature.data + (ch * n + image) * hw + p).loadUnaligned(as: SIMD8<Float>.self) * scale[ch]
            sum += v
            best = best.replacing(with: v, where: v .> best)
        }
        UnsafeMutableRawPointer(mean + p).storeBytes(of: sum * inverse, as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(top + p).storeBytes(of: best, as: SIMD8<Float>.self)
        p += 8
    }
    while p < hw {
        var sum: Float = 0, best = -Float.infinity
        for ch in 0..<c {
            let v = feature.data[(ch * n + image) * hw + p] * scale[ch]
            sum += v
            best = Swift.max(best, v)
        }
        mean[p] = sum * inverse
        top[p] = best
        p += 1
    }
}

/// `y[i] += a · x[i]`.
@inline(__always)
func axpy(_ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count {
        let xv = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        let yv = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: yv + a * xv, as: SIMD8<Float>.self)
        i += 8
    }
    while i < count { y[i] += a * x[i]; i += 1 }
}
