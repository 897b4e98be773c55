import CBAMKernels

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
        2 * batch * paddedPlane(height: height, width: width) + 8 + 2 * batch * height * width
    }

    func multiplyAdds(height: Int, width: Int) -> Int { 2 * kernel * kernel * height * width }

    private func paddedPlane(height: Int, width: Int) -> Int { (height + kernel - 1) * (width + kernel - 1) }

    /// Writes `M_s` of each image to `map[n·H·W + y·W + x]`, values in (0, 1), for the feature map
    /// `F' = M_c ⊗ F` (the channel-refined feature; `channelMap` is applied on the fly, `F'` is never stored).
    /// Threads share the images, each image's map made by `map` (a batch with fewer images than threads never gets
    /// here on more than one: `BlockAttention.refine` runs it on one).
    func callAsFunction(_ feature: FeatureMap, channelMap: UnsafePointer<Float>, into map: UnsafeMutablePointer<Float>,
                        scratch: UnsafeMutablePointer<Float>, threads: Int = 1) {
        let (hw, c) = (feature.pixels, feature.channels)
        parallelFor(feature.batch, threads: threads) { image, _ in
            self.map(feature, image: image, channelMap: channelMap + image * c, into: map + image * hw, scratch: scratch)
        }
    }

    /// `M_s` of one image (its `M_c` at `channelMap`) to `map` (`H·W` floats), on the calling thread: a batch's images
    /// can then go to threads whole, each with its planes in that core's cache from the pools to the refine.
    func map(_ feature: FeatureMap, image: Int, channelMap: UnsafePointer<Float>, into map: UnsafeMutablePointer<Float>,
             scratch: UnsafeMutablePointer<Float>) {
        let (mean, mx) = pools(scratch, image: image, feature)
        channelMeanAndMax(feature, image: image, pixels: 0..<feature.pixels, scale: channelMap, mean: mean, max: mx)
        pad(feature, image: image, scratch: scratch)
        convolve(feature, image: image, rows: 0..<feature.height, scratch: scratch, into: map)
    }

    /// Where an image's unpadded pools go in the scratch: after every image's padded planes.
    private func pools(_ scratch: UnsafeMutablePointer<Float>, image: Int, _ feature: FeatureMap)
        -> (mean: UnsafeMutablePointer<Float>, max: UnsafeMutablePointer<Float>) {
        let base = scratch + 2 * feature.batch * paddedPlane(height: feature.height, width: feature.width) + 8
        return (base + 2 * image * feature.pixels, base + (2 * image + 1) * feature.pixels)
    }

    /// An image's padded planes (mean, then max), which the convolution reads without bounds checks.
    private func planes(_ scratch: UnsafeMutablePointer<Float>, image: Int, _ feature: FeatureMap)
        -> (mean: UnsafeMutablePointer<Float>, max: UnsafeMutablePointer<Float>) {
        let size = paddedPlane(height: feature.height, width: feature.width)
        return (scratch + 2 * image * size, scratch + (2 * image + 1) * size)
    }

    /// Copies an image's pools into its padded planes, writing the zero border around them in the same sweep.
    private func pad(_ feature: FeatureMap, image: Int, scratch: UnsafeMutablePointer<Float>) {
        let (h, w, r) = (feature.height, feature.width, kernel / 2)
        let pw = w + 2 * r
        let (mean, mx) = pools(scratch, image: image, feature)
        let (paddedMean, paddedMax) = planes(scratch, image: image, feature)
        for (pool, plane) in [(mean, paddedMean), (mx, paddedMax)] {
            fill(plane, with: 0, count: r * pw + r)  // the rows above, and the first row's left border
            for y in 0..<h {
                let row = plane + (y + r) * pw + r
                copy(pool + y * w, to: row, count: w)
                fill(row + w, with: 0, count: 2 * r)  // this row's right border, the next row's left border
            }
            fill(plane + (h + r) * pw + r, with: 0, count: r * pw - r)  // the rest of the rows below
        }
    }

    /// `out = σ(bias + kernel ∗ [mean; max])` for `rows` of one image, over its padded planes (`width + 2·(k/2)`
    /// floats a row), eight output columns at a time with their sums in a register: one unaligned load and one
    /// multiply-add per tap.
    private func convolve(_ feature: FeatureMap, image: Int, rows: Range<Int>, scratch: UnsafeMutablePointer<Float>,
                          into out: UnsafeMutablePointer<Float>) {
        let (k, width) = (kernel, feature.width)
        let pw = width + k - 1
        let (mean, mx) = planes(scratch, image: image, feature)
        weight.withUnsafeBufferPointer { wt in
            let w = wt.baseAddress!
            for y in rows {
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
}

/// CBAM's pools across channels of `F' = scale ⊗ F` for the pixels `pixels` of one image: `mean[p]`, `max[p]`
/// over channels, for p in `pixels` (the kernel, `cbam_channel_mean_and_max`, in blocks of 512 pixels, four
/// channels at a time).
func channelMeanAndMax(_ feature: FeatureMap, image: Int, pixels: Range<Int>, scale: UnsafePointer<Float>,
                       mean: UnsafeMutablePointer<Float>, max top: UnsafeMutablePointer<Float>) {
    let (n, hw, c) = (feature.batch, feature.pixels, feature.channels)
    cbam_channel_mean_and_max(feature.data + image * hw + pixels.lowerBound, n * hw, Int32(c), scale, Int32(pixels.count),
                              mean + pixels.lowerBound, top + pixels.lowerBound)
}
