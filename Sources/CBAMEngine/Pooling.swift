import CBAMKernels

/// Max pooling over k×k windows with stride; padding never wins, as in PyTorch's MaxPool2d.
func maxPool(_ input: FeatureMap, kernel k: Int, stride s: Int, padding p: Int,
             outHeight oh: Int, outWidth ow: Int, into output: UnsafeMutablePointer<Float>, threads: Int = 1) {
    let (h, w) = (input.height, input.width)
    parallelRanges(input.channels * input.batch, threads: threads) { planes in
        // Each output row: the max down its k input rows (vectors across the row) into `column`, then across each
        // window. `column` has -∞ before and after the row, which is what padding is.
        let line = UnsafeMutablePointer<Float>.allocate(capacity: w + 2 * p + 32)
        defer { line.deallocate() }
        fill(line, with: -.infinity, count: w + 2 * p + 32)
        let column = line + p
        for plane in planes {
            let src = input.data + plane * h * w
            let dst = output + plane * oh * ow
            for oy in 0..<oh {
                let y0 = max(0, oy * s - p), y1 = min(h, oy * s - p + k)
                copy(src + y0 * w, to: column, count: w)
                for y in (y0 + 1)..<max(y0 + 1, y1) {
                    let row = src + y * w
                    var x = 0
                    while x + 8 <= w {
                        let a = UnsafeRawPointer(column + x).loadUnaligned(as: SIMD8<Float>.self)
                        let b = UnsafeRawPointer(row + x).loadUnaligned(as: SIMD8<Float>.self)
                        UnsafeMutableRawPointer(column + x).storeBytes(of: a.replacing(with: b, where: b .> a), as: SIMD8<Float>.self)
                        x += 8
                    }
                    while x < w { column[x] = Swift.max(column[x], row[x]); x += 1 }
                }
                var ox = 0
                if k == 3 && s == 2 && p == 1 {
                    // ResNet's stem pool, eight outputs at a time: window ox is column[2ox − 1 ... 2ox + 1], the even
                    // and odd lanes of the 16 values from 2ox − 1, and the even lanes of those from 2ox + 1.
                    while ox + 8 <= ow {
                        let a = UnsafeRawPointer(column + (2 * ox - 1)).loadUnaligned(as: SIMD16<Float>.self)
                        let b = UnsafeRawPointer(column + (2 * ox + 1)).loadUnaligned(as: SIMD16<Float>.self)
                        var m = a.evenHalf
                        m = m.replacing(with: a.oddHalf, where: a.oddHalf .> m)
                        m = m.replacing(with: b.evenHalf, where: b.evenHalf .> m)
                        UnsafeMutableRawPointer(dst + (oy * ow + ox)).storeBytes(of: m, as: SIMD8<Float>.self)
                        ox += 8
                    }
                }
                for ox in ox..<ow {
                    let x0 = max(0, ox * s - p), x1 = min(w, ox * s - p + k)
                    var m = -Float.infinity
                    for x in x0..<x1 { m = Swift.max(m, column[x]) }
                    dst[oy * ow + ox] = m
                }
            }
        }
    }
}

/// Mean over each channel's H×W of each image: `output[n·C + c]`, or `output[c·N + n]` when `channelMajor`.
func globalAveragePool(_ input: FeatureMap, into output: UnsafeMutablePointer<Float>, channelMajor: Bool = false) {
    let hw = input.pixels
    for c in 0..<input.channels {
        for n in 0..<input.batch {
            var (total, top): (Float, Float) = (0, 0)
            cbam_sum_and_max(input.data + (c * input.batch + n) * hw, Int32(hw), &total, &top)
            output[channelMajor ? c * input.batch + n : n * input.channels + c] = total / Float(hw)
        }
    }
}

/// Mean and max over each channel's H×W, CBAM's channel-attention pools:
/// `avg[n·C + c]` and `max[n·C + c]`.
func channelPools(_ input: FeatureMap, average avg: UnsafeMutablePointer<Float>, maximum mx: UnsafeMutablePointer<Float>,
                  threads: Int = 1) {
    let hw = input.pixels
    parallelRanges(input.channels, threads: threads) { channels in
        for c in channels {
            for n in 0..<input.batch {
                var (total, top): (Float, Float) = (0, 0)
                cbam_sum_and_max(input.data + (c * input.batch + n) * hw, Int32(hw), &total, &top)
                avg[n * input.channels + c] = total / Float(hw)
                mx[n * input.channels + c] = top
            }
        }
    }
}
