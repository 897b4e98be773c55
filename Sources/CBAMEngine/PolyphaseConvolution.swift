/// A 3x3 stride-2 convolution with padding 1 without im2col: the zero-padded input `xp` is split into its four
/// phases `Q[py, px][i, j] = xp[2i + py, 2j + px]` (each about a quarter of the input: one copy of the input in all,
/// where im2col writes 9/4 of it), and the output is then nine GEMMs, one per tap, each a stride-1 shift of a phase:
///
///     y[oy, ox] = Σ_{ky, kx} W[ky, kx] · xp[2·oy + ky, 2·ox + kx] = Σ W[ky, kx] · Q[ky % 2, kx % 2][oy + ky / 2, ox + kx / 2]
///
/// With each phase stored at a row pitch of `Wo + 1` (and `Ho + 1` rows per image), the shift by `(ky / 2, kx / 2)`
/// is a pointer offset, so each tap is one GEMM `[Cout, Cin] · [Cin, columns]` over whole images on weights
/// prepacked at load, one `[Cout, Cin]` matrix per tap. The price: the GEMMs also compute the pitch's extra column
/// and row (`(Ho + 1)(Wo + 1) / (Ho·Wo)` of the work, 1.27x at 8x8), which the epilogue drops while it adds the bias
/// and applies the ReLU. Images go in groups whose phases fill about 1 MB, so they stay in L2 across the nine GEMMs.
struct PolyphaseConvolution: Sendable {
    let inChannels: Int
    let outChannels: Int
    let relu: Bool
    /// `[9][Cout, Cin]`: tap `ky·3 + kx`.
    let taps: [Float]
    let bias: [Float]

    /// `weight` is `[Cout, Cin, 3, 3]` (BN folded).
    init(inChannels: Int, outChannels: Int, relu: Bool, weight: [Float], bias: [Float]) {
        precondition(weight.count == outChannels * inChannels * 9 && bias.count == outChannels)
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.relu = relu
        self.bias = bias
        var taps = [Float](repeating: 0, count: weight.count)
        for tap in 0..<9 {
            for o in 0..<outChannels {
                for i in 0..<inChannels {
                    taps[(tap * outChannels + o) * inChannels + i] = weight[(o * inChannels + i) * 9 + tap]
                }
            }
        }
        self.taps = taps
    }

    static func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height - 1) / 2 + 1, (width - 1) / 2 + 1)
    }

    /// Images per group: their four phases about 1 MB (at least one image, at most the batch split over the threads).
    func imagesPerGroup(batch: Int, height: Int, width: Int, threads: Int) -> Int {
        let (oh, ow) = Self.outputSize(height: height, width: width)
        let perImage = 4 * inChannels * (oh + 1) * (ow + 1)
        return max(1, min((1 << 18) / perImage, (batch + threads - 1) / threads))
    }

    /// Floats of each thread's buffer: one group's phases and its pitched output.
    func bufferCount(batch: Int, height: Int, width: Int, threads: Int) -> Int {
        let (oh, ow) = Self.outputSize(height: height, width: width)
        let group = imagesPerGroup(batch: batch, height: height, width: width, threads: threads)
        return (4 * inChannels + outChannels) * group * (oh + 1) * (ow + 1)
    }

    /// Writes `[Cout, N, Ho, Wo]` to `output`, on as many threads as there are `buffers`.
    @discardableResult
    func callAsFunction(_ input: FeatureMap, into output: UnsafeMutablePointer<Float>,
                        buffers: [UnsafeMutablePointer<Float>]) -> FeatureMap {
        precondition(input.channels == inChannels, "PolyphaseConvolution: input has \(input.channels) channels, expected \(inChannels)")
        let (h, w, n) = (input.height, input.width, input.batch)
        let (oh, ow) = Self.outputSize(height: h, width: w)
        let out = FeatureMap(data: output, channels: outChannels, batch: n, height: oh, width: ow)
        let pitch = ow + 1, imagePlane = (oh + 1) * pitch
        let group = imagesPerGroup(batch: n, height: h, width: w, threads: buffers.count)
        taps.withUnsafeBufferPointer { taps in
            bias.withUnsafeBufferPointer { bias in
                parallelFor((n + group - 1) / group, threads: buffers.count) { g, thread in
                    let first = g * group, images = min(group, n - first)
                    let plane = images * imagePlane
                    let phases = buffers[thread], result = phases + 4 * inChannels * plane
                    split(input, images: first..<first + images, pitch: pitch, rows: oh + 1, into: phases)
                    // The columns the nine GEMMs need: up to the last output pixel of the group's last image.
                    let columns = (images - 1) * imagePlane + (oh - 1) * pitch + ow
                    for ky in 0..<3 {
                        for kx in 0..<3 {
                            let phase = phases + ((ky % 2) * 2 + kx % 2) * inChannels * plane
                            let shift = (ky / 2) * pitch + kx / 2
                            gemm(m: outChannels, n: columns, k: inChannels,
                                 a: taps.baseAddress! + (ky * 3 + kx) * outChannels * inChannels, lda: inChannels,
                                 b: phase + shift, ldb: plane, c: result, ldc: plane, beta: ky == 0 && kx == 0 ? 0 : 1)
                        }
                    }
                    // Epilogue: drop the pitch's extra column and row, add the bias, apply the ReLU.
                    let zero = SIMD4<Float>()
                    for c in 0..<outChannels {
                        let b = bias[c]
                        for image in 0..<images {
                            for oy in 0..<oh {
                                let src = result + c * plane + image * imagePlane + oy * pitch
                                let dst = output + ((c * n + first + image) * oh + oy) * ow
                                var x = 0
                                while x + 4 <= ow {
                                    var v = UnsafeRawPointer(src + x).loadUnaligned(as: SIMD4<Float>.self) + b
                                    if relu { v = v.replacing(with: zero, where: v .< zero) }
                                    UnsafeMutableRawPointer(dst + x).storeBytes(of: v, as: SIMD4<Float>.self)
                                    x += 4
                                }
                                while x < ow {
                                    let v = src[x] + b
                                    dst[x] = relu ? max(v, 0) : v
                                    x += 1
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// `phases[(py·2 + px)][ci][image][i][j] = x[ci, image, 2i + py − 1, 2j + px − 1]` (0 outside the map), for
    /// `i < rows`, `j < pitch`.
    private func split(_ input: FeatureMap, images: Range<Int>, pitch: Int, rows: Int, into phases: UnsafeMutablePointer<Float>) {
        let (h, w, n) = (input.height, input.width, input.batch)
        let plane = images.count * rows * pitch
        // Valid columns: px = 1 reads x = 2j for j < (w + 1) / 2; px = 0 reads x = 2j − 1 for 1 <= j <= w / 2.
        let evenCount = min(pitch, (w + 1) / 2), oddCount = min(pitch - 1, w / 2)
        for py in 0..<2 {
            for ci in 0..<inChannels {
                for (local, image) in images.enumerated() {
                    let source = input.data + (ci * n + image) * h * w
                    var odd = phases + ((py * 2) * inChannels + ci) * plane + local * rows * pitch
                    var even = phases + ((py * 2 + 1) * inChannels + ci) * plane + local * rows * pitch
                    for i in 0..<rows {
                        let y = 2 * i + py - 1
                        if y < 0 || y >= h {
                            fill(odd, with: 0, count: pitch)
                            fill(even, with: 0, count: pitch)
                        } else {
                            let line = source + y * w
                            odd[0] = 0
                            if oddCount > 0 { gatherEven(line + 1, to: odd + 1, count: oddCount) }
                            for j in (oddCount + 1)..<pitch { odd[j] = 0 }
                            if evenCount > 0 { gatherEven(line, to: even, count: evenCount) }
                            for j in evenCount..<pitch { even[j] = 0 }
                        }
                        odd += pitch
                        even += pitch
                    }
                }
            }
        }
    }
}
