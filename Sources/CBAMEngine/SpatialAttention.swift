/// CBAM's spatial attention (Woo et al., eq. 3): `M_s(F) = σ(f^{k×k}([AvgPool_c(F); MaxPool_c(F)]))`,
/// pools across channels, then one k×k convolution from 2 channels to 1. The authors' layout (a BatchNorm after
/// the convolution, pools in the order (max, mean)) is folded into this form at load.
struct SpatialAttention {
    let kernel: Int
    /// `[2, kernel, kernel]`: the kernel over the channel mean, then over the channel max.
    let weight: [Float]
    let bias: Float

    /// Floats of scratch a pass needs: both pooled planes of every image with a border of k/2 zeros, room for the
    /// last row's vector loads to run past the end, and the unpadded pools.
    func scratchCount(batch: Int, height: Int, width: Int) -> Int {
        2 * batch * (height + kernel - 1) * (width + kernel - 1) + 8 + 2 * batch * height * width
    }

    func multiplyAdds(height: Int, width: Int) -> Int { 2 * kernel * kernel * height * width }

    /// Writes `M_s` of each image to `map[n·H·W + y·W + x]`, values in (0, 1), for the feature map
    /// `F' = M_c ⊗ F` (the channel-refined feature; `channelMap` is applied on the fly, `F'` is never stored).
    func callAsFunction(_ feature: FeatureMap, channelMap: UnsafePointer<Float>, into map: UnsafeMutablePointer<Float>,
                        scratch: UnsafeMutablePointer<Float>, threads: Int = 1) {
        let (n, h, w, hw, c) = (feature.batch, feature.height, feature.width, feature.pixels, feature.channels)
        // The pooled planes get a zero border, so that the convolution reads them without bounds checks.
        let r = kernel / 2
        let (pw, planeSize) = (w + 2 * r, (h + 2 * r) * (w + 2 * r))
        let padded = 2 * n * planeSize + 8
        let mean = scratch, mx = scratch + n * planeSize, pools = scratch + padded
        scratch.update(repeating: 0, count: padded)
        // The pools read every channel: with fewer images than threads, each image's pixels are shared out too.
        let parts = n >= threads ? 1 : threads
        parallelFor(n * parts, threads: threads) { task, _ in
            let (image, part) = task.quotientAndRemainder(dividingBy: parts)
            let groups = (hw + 7) / 8
            let pixels = min(hw, part * groups / parts * 8)..<min(hw, (part + 1) * groups / parts * 8)
            channelMeanAndMax(feature, image: image, pixels: pixels, scale: channelMap + image * c,
                              mean: pools + 2 * image * hw, max: pools + (2 * image + 1) * hw)
        }
        for image in 0..<n {
            for y in 0..<h {
                let inside = image * planeSize + (y + r) * pw + r
                copy(pools + (2 * image * hw + y * w), to: mean + inside, count: w)
                copy(pools + ((2 * image + 1) * hw + y * w), to: mx + inside, count: w)
            }
        }
        weight.withUnsafeBufferPointer { wt in
            for image in 0..<n {
                convolve(mean + image * planeSize, mx + image * planeSize, kernel: wt.baseAddress!, height: h, width: w,
                         into: map + image * hw)
            }
        }
    }

    /// `out = σ(bias + kernel ∗ [mean; max])` over the padded planes (`width + 2·(k/2)` floats a row), eight output
    /// columns at a time with their sums in a register: one unaligned load and one multiply-add per tap.
    private func convolve(_ mean: UnsafePointer<Float>, _ mx: UnsafePointer<Float>, kernel w: UnsafePointer<Float>,
                          height h: Int, width: Int, into out: UnsafeMutablePointer<Float>) {
        let k = kernel
        let pw = width + k - 1
        for y in 0..<h {
            var x = 0
            while x < width {
                var sum = SIMD8<Float>(repeating: bias)
                for pool in 0..<2 {
                    let (plane, taps) = pool == 0 ? (mean, w) : (mx, w + k * k)
                    for ky in 0..<k {
                        let row = plane + ((y + ky) * pw + x)
                        for kx in 0..<k {
                            sum += taps[ky * k + kx] * UnsafeRawPointer(row + kx).loadUnaligned(as: SIMD8<Float>.self)
                        }
                    }
                }
                let dst = out + (y * width + x)
                for lane in 0..<min(8, width - x) { dst[lane] = sigmoid(sum[lane]) }
                x += 8
            }
        }
    }
}

/// CBAM's pools across channels of `F' = scale ⊗ F` for the pixels `pixels` of one image: `mean[p]`, `max[p]`
/// over channels, for p in `pixels` (a range whose start is a multiple of 8, or the whole plane).
func channelMeanAndMax(_ feature: FeatureMap, image: Int, pixels: Range<Int>, scale: UnsafePointer<Float>,
                       mean: UnsafeMutablePointer<Float>, max top: UnsafeMutablePointer<Float>) {
    let (n, hw, c) = (feature.batch, feature.pixels, feature.channels)
    let inverse = 1 / Float(c)
    var p = pixels.lowerBound
    // Eight pixels at a time across all channels, accumulators in registers.
    while p + 8 <= pixels.upperBound {
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
    while p < pixels.upperBound {
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
