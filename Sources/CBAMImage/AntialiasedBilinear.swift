/// PIL's `Image.resize(size, BILINEAR)` for 8-bit images, reimplemented from its documented algorithm: a
/// separable convolution with the triangle filter whose support grows with the downscale factor
/// (antialiasing), weights normalised per output pixel and rounded to 22-bit fixed point, a horizontal
/// pass into an 8-bit intermediate, then a vertical pass. This is what torchvision's `Resize` runs on PIL images.
struct AntialiasedBilinear {
    /// Fixed-point weights for the outputs `outputs` of one axis: output `outputs.lowerBound + i` reads
    /// `count[i]` inputs from `first[i]`. Only the outputs asked for are computed, so a thin image whose
    /// resized long side is huge costs no more than its crop.
    struct Axis {
        let base: Int
        let kernelSize: Int
        let first: [Int]
        let count: [Int]
        let weights: [Int32]  // outputs.count * kernelSize

        static let precisionBits = 32 - 8 - 2

        /// `[start, start + extent)`: the input span the output covers (PIL's box), `[0, inSize)` unless the
        /// input was DCT-scaled and one edge pixel stands for only part of a block.
        init(inSize: Int, start: Double, extent: Double, outSize: Int, outputs: Range<Int>) {
            let scale = extent / Double(outSize)
            let filterScale = max(scale, 1.0)
            let support = 1.0 * filterScale  // the triangle filter's support is 1
            let kernelSize = Int(support.rounded(.up)) * 2 + 1
            var first = [Int](repeating: 0, count: outputs.count)
            var count = [Int](repeating: 0, count: outputs.count)
            var weights = [Int32](repeating: 0, count: outputs.count * kernelSize)
            var k = [Double](repeating: 0, count: kernelSize)
            let one = Double(1 << Axis.precisionBits)
            let inverseFilterScale = 1.0 / filterScale  // multiplied, not divided: same rounding as PIL
            for (i, output) in outputs.enumerated() {
                let center = start + (Double(output) + 0.5) * scale
                let lo = max(Int(center - support + 0.5), 0)
                let hi = min(Int(center + support + 0.5), inSize)
                var total = 0.0
                for j in 0..<(hi - lo) {
                    let x = abs((Double(j + lo) - center + 0.5) * inverseFilterScale)
                    k[j] = x < 1 ? 1 - x : 0
                    total += k[j]
                }
                for j in 0..<(hi - lo) {
                    let w = total != 0 ? k[j] / total : k[j]
                    weights[i * kernelSize + j] = Int32(w < 0 ? w * one - 0.5 : w * one + 0.5)
                }
                first[i] = lo
                count[i] = hi - lo
            }
            self.base = outputs.lowerBound
            self.kernelSize = kernelSize
            self.first = first
            self.count = count
            self.weights = weights
        }
    }

    @inline(__always)
    static func clip8(_ sum: Int32) -> UInt8 {
        let v = sum >> Int32(Axis.precisionBits)
        return v < 0 ? 0 : v > 255 ? 255 : UInt8(truncatingIfNeeded: v)
    }

    /// Resizes `image` to `outWidth` x `outHeight` but computes only the output window
    /// `columns` x `rows` (every output pixel is independent, so a crop of the result is exact).
    /// Returns the window as RGB8, `columns.count * rows.count * 3` bytes.
    /// `box`: the input region that maps onto the output (PIL's `box`).
    static func resize(_ image: RGBImage, box: (x0: Double, y0: Double, width: Double, height: Double),
                       outWidth: Int, outHeight: Int, columns: Range<Int>, rows: Range<Int>) -> [UInt8] {
        let inW = image.width, inH = image.height
        let outCols = columns.count, outRows = rows.count
        if outCols == 0 || outRows == 0 { return [] }
        let horizontal = outWidth != inW || box.x0 != 0 || box.width != Double(inW)
            ? Axis(inSize: inW, start: box.x0, extent: box.width, outSize: outWidth, outputs: columns) : nil
        let vertical = outHeight != inH || box.y0 != 0 || box.height != Double(inH)
            ? Axis(inSize: inH, start: box.y0, extent: box.height, outSize: outHeight, outputs: rows) : nil

        // Input rows the vertical pass will read.
        let firstRow: Int, lastRow: Int
        if let v = vertical {
            firstRow = v.first.min()!
            lastRow = zip(v.first, v.count).map { $0 + $1 }.max()!
        } else {
            firstRow = rows.lowerBound
            lastRow = rows.upperBound
        }

        // Horizontal pass: input rows [firstRow, lastRow) → intermediate rows of `outCols` pixels.
        let tempRows = lastRow - firstRow
        var temp = [UInt8](repeating: 0, count: tempRows * outCols * 3)
        image.pixels.withUnsafeBufferPointer { input in
            temp.withUnsafeMutableBufferPointer { out in
                guard let h = horizontal else {
                    for r in 0..<tempRows {
                        let src = ((firstRow + r) * inW + columns.lowerBound) * 3
                        for b in 0..<(outCols * 3) { out[r * outCols * 3 + b] = input[src + b] }
                    }
                    return
                }
                h.weights.withUnsafeBufferPointer { weights in
                    for r in 0..<tempRows {
                        let rowBase = (firstRow + r) * inW * 3
                        var o = r * outCols * 3
                        for x in columns {
                            let i = x - h.base
                            let lo = h.first[i], n = h.count[i], kBase = i * h.kernelSize
                            var s0: Int32 = 1 << Int32(Axis.precisionBits - 1), s1 = s0, s2 = s0
                            var p = rowBase + lo * 3
                            for j in 0..<n {
                                let w = weights[kBase + j]
                                s0 &+= Int32(input[p]) &* w
                                s1 &+= Int32(input[p + 1]) &* w
                                s2 &+= Int32(input[p + 2]) &* w
                                p += 3
                            }
                            out[o] = clip8(s0)
                            out[o + 1] = clip8(s1)
                            out[o + 2] = clip8(s2)
                            o += 3
                        }
                    }
                }
            }
        }

        guard let v = vertical else { return temp }  // rows == [firstRow, lastRow)
        // Vertical pass over the intermediate.
        let rowBytes = outCols * 3
        return [UInt8](unsafeUninitializedCapacity: outRows * rowBytes) { out, initialized in
            temp.withUnsafeBufferPointer { t in
                v.weights.withUnsafeBufferPointer { weights in
                    var o = 0
                    for y in rows {
                        let i = y - v.base
                        let lo = v.first[i] - firstRow, n = v.count[i], kBase = i * v.kernelSize
                        for b in 0..<rowBytes {
                            var s: Int32 = 1 << Int32(Axis.precisionBits - 1)
                            var p = lo * rowBytes + b
                            for j in 0..<n {
                                s &+= Int32(t[p]) &* weights[kBase + j]
                                p += rowBytes
                            }
                            out[o] = clip8(s)
                            o += 1
                        }
                    }
                }
            }
            initialized = outRows * rowBytes
        }
    }
}
