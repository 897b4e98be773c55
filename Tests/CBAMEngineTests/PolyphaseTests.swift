import Testing
@testable import CBAMEngine

/// The polyphase 3x3 stride-2 convolution against a direct one summed in double precision, on even and odd map
/// sizes (an odd size leaves the last phase row and column partly padding), batch 1 and batches larger than the
/// threads (several image groups).
struct PolyphaseTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let batch, channels, outChannels, height, width: Int
        var testDescription: String { "\(batch)x\(channels)→\(outChannels) \(height)x\(width)" }
    }

    static let cases: [Case] = [
        .init(batch: 1, channels: 5, outChannels: 6, height: 7, width: 7),
        .init(batch: 3, channels: 4, outChannels: 3, height: 13, width: 13),
        .init(batch: 5, channels: 16, outChannels: 9, height: 8, width: 8),
        .init(batch: 2, channels: 3, outChannels: 4, height: 97, width: 34),
        .init(batch: 2, channels: 8, outChannels: 8, height: 1, width: 35),
        .init(batch: 7, channels: 40, outChannels: 12, height: 32, width: 32),
    ]

    /// `[Cout, N, Ho, Wo]` from `[Cin, N, H, W]`; stride 2, zero padding 1.
    func reference(_ x: [Float], _ c: Case, weight: [Float], bias: [Float], relu: Bool) -> [Float] {
        let (n, h, w) = (c.batch, c.height, c.width)
        let (oh, ow) = ((h - 1) / 2 + 1, (w - 1) / 2 + 1)
        var y = [Float](repeating: 0, count: c.outChannels * n * oh * ow)
        for o in 0..<c.outChannels { for b in 0..<n { for oy in 0..<oh { for ox in 0..<ow {
            var acc = Double(bias[o])
            for i in 0..<c.channels { for ky in 0..<3 { for kx in 0..<3 {
                let (iy, ix) = (2 * oy + ky - 1, 2 * ox + kx - 1)
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                acc += Double(weight[((o * c.channels + i) * 3 + ky) * 3 + kx]) * Double(x[((i * n + b) * h + iy) * w + ix])
            } } }
            y[((o * n + b) * oh + oy) * ow + ox] = Float(relu ? max(acc, 0) : acc)
        } } } }
        return y
    }

    @Test(arguments: cases)
    func matchesTheDirectConvolution(_ c: Case) {
        var rng = SeededValues(seed: UInt64(c.height * 100 + c.width + c.batch))
        let weight = rng.array(c.outChannels * c.channels * 9), bias = rng.array(c.outChannels)
        var x = rng.array(c.channels * c.batch * c.height * c.width)
        for relu in [false, true] {
            let expected = reference(x, c, weight: weight, bias: bias, relu: relu)
            let magnitude = expected.map(abs).max()!
            let conv = Conv2D(inChannels: c.channels, outChannels: c.outChannels, kernel: 3, stride: 2, padding: 1,
                              relu: relu, weight: weight, bias: bias)
            #expect(conv.candidates(batch: c.batch, height: c.height, width: c.width) == [.gemm, .polyphase])
            for threads in [1, 2] {
                let count = conv.bufferCount(batch: c.batch, height: c.height, width: c.width, threads: threads,
                                             algorithm: .polyphase)
                let buffers = (0..<threads).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: count) }
                defer { buffers.forEach { $0.deallocate() } }
                buffers.forEach { $0.initialize(repeating: .nan, count: count) }
                var got = [Float](repeating: .nan, count: expected.count)
                x.withUnsafeMutableBufferPointer { xp in
                    got.withUnsafeMutableBufferPointer { yp in
                        _ = conv(FeatureMap(data: xp.baseAddress!, channels: c.channels, batch: c.batch, height: c.height,
                                            width: c.width), into: yp.baseAddress!, buffers: buffers, algorithm: .polyphase)
                    }
                }
                #expect(!got.contains { $0.isNaN }, "outputs left unwritten or NaN read from the buffer")
                let error = maxAbsDifference(got, expected)
                #expect(error <= 1e-5 * magnitude, "\(threads) threads, relu \(relu): error \(error), magnitude \(magnitude)")
            }
        }
    }
}
