import Dispatch
import Synchronization
import Testing
@testable import CBAMEngine

/// Winograd F(2x2, 3x3) and F(4x4, 3x3) against a direct 3x3 "same" convolution summed in double precision,
/// on odd map sizes (partial tiles at the right and bottom edges), batch 1 and batch larger than the threads.
struct WinogradTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let batch, channels, outChannels, height, width: Int
        var testDescription: String { "\(batch)x\(channels)→\(outChannels) \(height)x\(width)" }
    }

    static let cases: [Case] = [
        .init(batch: 1, channels: 5, outChannels: 6, height: 7, width: 7),
        .init(batch: 3, channels: 4, outChannels: 3, height: 13, width: 13),
        .init(batch: 1, channels: 3, outChannels: 4, height: 97, width: 97),
        .init(batch: 5, channels: 16, outChannels: 9, height: 13, width: 7),
        .init(batch: 2, channels: 8, outChannels: 8, height: 1, width: 34),
        // Few tiles and `U` over 1 MB: on two threads, one block whose output channels (131, a partial panel) the
        // threads share.
        .init(batch: 1, channels: 128, outChannels: 131, height: 5, width: 6),
    ]

    /// `[Cout, N, H, W]` from `[Cin, N, H, W]`, the engine's layout; zero padding 1.
    func reference(_ x: [Float], _ c: Case, weight: [Float], bias: [Float], relu: Bool) -> [Float] {
        let (n, h, w) = (c.batch, c.height, c.width)
        var y = [Float](repeating: 0, count: c.outChannels * n * h * w)
        for o in 0..<c.outChannels { for b in 0..<n { for oy in 0..<h { for ox in 0..<w {
            var acc = Double(bias[o])
            for i in 0..<c.channels { for ky in 0..<3 { for kx in 0..<3 {
                let (iy, ix) = (oy + ky - 1, ox + kx - 1)
                guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                acc += Double(weight[((o * c.channels + i) * 3 + ky) * 3 + kx]) * Double(x[((i * n + b) * h + iy) * w + ix])
            } } }
            y[((o * n + b) * h + oy) * w + ox] = Float(relu ? max(acc, 0) : acc)
        } } } }
        return y
    }

    func run(_ conv: WinogradConvolution, _ x: [Float], _ c: Case, threads: Int) -> [Float] {
        var input = x
        var output = [Float](repeating: .nan, count: c.outChannels * c.batch * c.height * c.width)
        let count = conv.bufferCount(batch: c.batch, height: c.height, width: c.width, threads: threads)
        let buffers = (0..<threads).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: count) }
        defer { buffers.forEach { $0.deallocate() } }
        buffers.forEach { $0.initialize(repeating: .nan, count: count) }
        input.withUnsafeMutableBufferPointer { xp in
            output.withUnsafeMutableBufferPointer { yp in
                _ = conv(FeatureMap(data: xp.baseAddress!, channels: c.channels, batch: c.batch, height: c.height, width: c.width),
                         into: yp.baseAddress!, buffers: buffers)
            }
        }
        return output
    }

    @Test(arguments: cases)
    func matchesTheDirectConvolution(_ c: Case) {
        var rng = SeededValues(seed: UInt64(c.height * 100 + c.width + c.batch))
        let weight = rng.array(c.outChannels * c.channels * 9), bias = rng.array(c.outChannels)
        // Unit-scale activations, and large post-ReLU-like ones (all positive, up to 1000), where the transforms'
        // differences of large numbers cost the most precision.
        let unit = rng.array(c.channels * c.batch * c.height * c.width)
        for (scale, offset) in [(Float(1), Float(0)), (Float(500), Float(500))] {
            let x = unit.map { $0 * scale + offset }
            for relu in [false, true] {
                let expected = reference(x, c, weight: weight, bias: bias, relu: relu)
                let magnitude = expected.map(abs).max()!
                for variant in [WinogradConvolution.Variant.f2x2, .f4x4] {
                    let conv = WinogradConvolution(variant, inChannels: c.channels, outChannels: c.outChannels, relu: relu,
                                                   weight: weight, bias: bias)
                    for threads in [1, 2] {
                        let got = run(conv, x, c, threads: threads)
                        #expect(!got.contains { $0.isNaN }, "\(variant) left outputs unwritten")
                        // Float32 with F(4x4)'s constants: a few 1e-6 of the output's magnitude; a wrong tap or
                        // a missed edge would be of the order of the magnitude itself.
                        let error = maxAbsDifference(got, expected)
                        #expect(error <= 1e-5 * magnitude, "\(variant), \(threads) threads, scale \(scale): error \(error), magnitude \(magnitude)")
                    }
                }
            }
        }
    }

    /// Which passes share output channels between threads rather than blocks of tile rows: few tiles per thread and
    /// weights large enough that every thread reading all of them would cost more than each transforming the input.
    @Test func fewTilesOnLargeWeightsShareOutputChannels() {
        let large = WinogradConvolution(.f2x2, inChannels: 128, outChannels: 131, relu: false,
                                        weight: [Float](repeating: 0, count: 131 * 128 * 9), bias: [Float](repeating: 0, count: 131))
        let small = WinogradConvolution(.f4x4, inChannels: 16, outChannels: 16, relu: false,
                                        weight: [Float](repeating: 0, count: 16 * 16 * 9), bias: [Float](repeating: 0, count: 16))
        #expect(large.sharesOutputChannels(tiles: 9, threads: 2))
        #expect(!large.sharesOutputChannels(tiles: 9, threads: 1))
        #expect(!large.sharesOutputChannels(tiles: 128, threads: 2))
        #expect(!small.sharesOutputChannels(tiles: 9, threads: 2))
        // One block of every tile row, so each thread's buffer holds all of them.
        #expect(large.rowsPerBlock(batch: 1, height: 5, width: 6, threads: 2) == 3)
    }

    @Test func onlySameThreeByThreeConvolutionsHaveWinogradCandidates() {
        let conv = Conv2D(inChannels: 2, outChannels: 2, kernel: 3, stride: 1, padding: 1, relu: false,
                          weight: [Float](repeating: 0.1, count: 36), bias: [0, 0])
        #expect(conv.candidates(batch: 1, height: 32, width: 32) == [.winograd4x4, .winograd2x2, .gemm])
        #expect(conv.candidates(batch: 4, height: 3, width: 9) == [.winograd2x2, .gemm])
        #expect(conv.defaultAlgorithm(batch: 1, height: 32, width: 32) == .winograd4x4)
        #expect(conv.defaultAlgorithm(batch: 1, height: 4, width: 4) == .gemm)
        let strided = Conv2D(inChannels: 2, outChannels: 2, kernel: 3, stride: 2, padding: 1, relu: false,
                             weight: [Float](repeating: 0.1, count: 36), bias: [0, 0])
        #expect(strided.winograd4 == nil && strided.candidates(batch: 8, height: 32, width: 32) == [.gemm])
    }

    /// The first pass of a shape measures a plan; the next passes of that shape follow it and give the same logits.
    @Test func planIsMeasuredOncePerShapeAndReused() throws {
        let model = try CBAMModel.load(directory: ParityFixture.directory("basic_cifar_selective"))
        let input: [Float] = (0..<(2 * 3 * 32 * 32)).map { i in Float(i % 97) / 97 - 0.5 }
        func pass(batch: Int) throws -> ForwardResult {
            try input.withUnsafeBufferPointer {
                try model.forward(UnsafeBufferPointer(rebasing: $0[0..<(batch * 3 * 32 * 32)]), batch: batch, height: 32,
                                  width: 32, attention: false, slices: 1)
            }
        }
        let first = try pass(batch: 2)
        #expect(model.planCount == 1)
        let threads = model.singleSliceThreads(batch: 2, height: 32, width: 32)
        let plan = try #require(model.plan(for: .init(batch: 2, height: 32, width: 32, threads: threads)))
        let convolutions = 1 + model.blocks.map { block in block.convolutions.count + (block.downsample == nil ? 0 : 1) }.reduce(0, +)
        #expect(plan.algorithms.count == convolutions)
        let second = try pass(batch: 2)
        #expect(model.planCount == 1)
        #expect(maxAbsDifference(first.logits, second.logits) <= 1e-5)
        _ = try pass(batch: 1)
        #expect(model.planCount == 2)
    }

    /// `warmUp` measures the plan of every batch size it is given (each slice's shape when the batch is split over
    /// threads), shared by all workspaces, so a later pass of those shapes, or of batches in the same power-of-two
    /// class, measures nothing; a bad size is an error.
    @Test func warmUpMeasuresThePlansOfItsBatchSizes() throws {
        let model = try CBAMModel.load(directory: ParityFixture.directory("basic_cifar_selective"))
        let size = model.config.input.size
        #expect(model.planCount == 0)
        try model.warmUp(batchSizes: [1, 3])
        for batch in [1, 3] {
            for key in model.passKeys(batch: batch, height: size, width: size) { #expect(model.plan(for: key) != nil) }
        }
        let planned = model.planCount
        #expect(planned >= 1)
        for batch in [3, 2] {
            _ = try model.forward([Float](repeating: 0.25, count: batch * 3 * size * size), batch: batch, height: size,
                                  width: size, attention: false)
        }
        #expect(model.planCount == planned)
        #expect(throws: ModelError.self) { try model.warmUp(batchSizes: [0]) }
    }

    @Test func batchesSharePlansByPowersOfTwo() {
        let classes = [1, 2, 3, 4, 7, 8, 63, 64, 65].map { ExecutionPlan.Key(batch: $0, height: 8, width: 8, threads: 1).batchClass }
        #expect(classes == [1, 2, 2, 4, 4, 8, 32, 64, 64])
    }

    /// The model is Sendable: passes from several threads at once borrow their own workspaces and agree with a
    /// pass run alone.
    @Test func concurrentPassesAgreeWithASequentialOne() throws {
        let model = try CBAMModel.load(directory: ParityFixture.directory("basic_cifar_selective"))
        let input: [Float] = (0..<(2 * 3 * 32 * 32)).map { i in Float(i % 89) / 89 - 0.5 }
        let alone = try model.forward(input, batch: 2, height: 32, width: 32, attention: false).logits
        let results = Mutex<[[Float]]>([])
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            let logits = (try? model.forward(input, batch: 2, height: 32, width: 32, attention: false).logits) ?? []
            results.withLock { $0.append(logits) }
        }
        let all = results.withLock { $0 }
        #expect(all.count == 4)
        for logits in all { #expect(logits.count == alone.count && maxAbsDifference(logits, alone) <= 1e-5) }
    }
}
