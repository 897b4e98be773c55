import Foundation
import Testing
@testable import CBAMEngine

/// The kernels on their own, against naive loops written straight from the definitions.
@Suite struct KernelTests {
    /// Direct convolution on NCHW, the definition: `y[n,o,oy,ox] = b[o] + Σ w[o,i,ky,kx]·x[n,i,oy·s−p+ky,ox·s−p+kx]`.
    func naiveConvolution(_ x: [Float], n: Int, cin: Int, h: Int, w: Int, weight: [Float], bias: [Float], cout: Int,
                          k: Int, s: Int, p: Int, relu: Bool) -> (values: [Float], oh: Int, ow: Int) {
        let oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1
        var y = [Float](repeating: 0, count: n * cout * oh * ow)
        for b in 0..<n { for o in 0..<cout { for oy in 0..<oh { for ox in 0..<ow {
            var acc = Double(bias[o])
            for i in 0..<cin { for ky in 0..<k { for kx in 0..<k {
                let iy = oy * s - p + ky, ix = ox * s - p + kx
                if iy >= 0 && iy < h && ix >= 0 && ix < w {
                    acc += Double(weight[((o * cin + i) * k + ky) * k + kx]) * Double(x[((b * cin + i) * h + iy) * w + ix])
                }
            }}}
            y[((b * cout + o) * oh + oy) * ow + ox] = relu ? Float(max(acc, 0)) : Float(acc)
        }}}}
        return (y, oh, ow)
    }

    /// NCHW ↔ the engine's [C, N, H, W].
    func toChannelMajor(_ x: [Float], n: Int, c: Int, hw: Int) -> [Float] {
        var y = x
        for b in 0..<n { for ch in 0..<c { for i in 0..<hw { y[(ch * n + b) * hw + i] = x[(b * c + ch) * hw + i] } } }
        return y
    }

    func toImageMajor(_ y: [Float], n: Int, c: Int, hw: Int) -> [Float] {
        var x = y
        for b in 0..<n { for ch in 0..<c { for i in 0..<hw { x[(b * c + ch) * hw + i] = y[(ch * n + b) * hw + i] } } }
        return x
    }

    struct ConvCase: CustomTestStringConvertible, Sendable {
        let n, cin, cout, h, w, k, s, p: Int
        var testDescription: String { "n\(n) \(cin)→\(cout) \(h)x\(w) k\(k) s\(s) p\(p)" }
    }

    static let convCases: [ConvCase] = [
        .init(n: 1, cin: 3, cout: 8, h: 11, w: 11, k: 7, s: 2, p: 3),  // ImageNet stem, odd size
        .init(n: 2, cin: 5, cout: 4, h: 9, w: 6, k: 3, s: 1, p: 1),    // 3x3, batch, non-square
        .init(n: 3, cin: 4, cout: 6, h: 7, w: 10, k: 3, s: 2, p: 1),   // strided 3x3
        .init(n: 2, cin: 6, cout: 5, h: 8, w: 5, k: 1, s: 1, p: 0),    // plain GEMM
        .init(n: 2, cin: 6, cout: 5, h: 9, w: 7, k: 1, s: 2, p: 0),    // strided gather
        .init(n: 1, cin: 2, cout: 3, h: 1, w: 1, k: 7, s: 2, p: 3),    // 1x1 input, kernel larger than it
        .init(n: 1, cin: 2, cout: 3, h: 2, w: 3, k: 5, s: 3, p: 2),    // stride larger than the input edge
        .init(n: 2, cin: 64, cout: 8, h: 20, w: 20, k: 3, s: 1, p: 1), // several column tiles
        .init(n: 2, cin: 300, cout: 4, h: 30, w: 30, k: 1, s: 1, p: 0), // several GEMM tiles, no im2col
    ]

    @Test(arguments: convCases)
    func convolutionMatchesTheDefinition(_ c: ConvCase) {
        var rng = SeededValues(seed: UInt64(c.k * 100 + c.s * 10 + c.n))
        let x = rng.array(c.n * c.cin * c.h * c.w)
        let weight = rng.array(c.cout * c.cin * c.k * c.k), bias = rng.array(c.cout)
        for relu in [false, true] {
            let conv = Conv2D(inChannels: c.cin, outChannels: c.cout, kernel: c.k, stride: c.s, padding: c.p, relu: relu,
                              weight: weight, bias: bias)
            let expected = naiveConvolution(x, n: c.n, cin: c.cin, h: c.h, w: c.w, weight: weight, bias: bias, cout: c.cout,
                                            k: c.k, s: c.s, p: c.p, relu: relu)
            for threads in [1, 2] {
                var input = toChannelMajor(x, n: c.n, c: c.cin, hw: c.h * c.w)
                var output = [Float](repeating: .nan, count: expected.values.count)
                let count = max(1, conv.bufferCount(batch: c.n, height: c.h, width: c.w, threads: threads))
                let buffers = (0..<threads).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: count) }
                defer { buffers.forEach { $0.deallocate() } }
                buffers.forEach { $0.initialize(repeating: .nan, count: count) }
                let shape = input.withUnsafeMutableBufferPointer { xp in
                    output.withUnsafeMutableBufferPointer { yp in
                        conv(FeatureMap(data: xp.baseAddress!, channels: c.cin, batch: c.n, height: c.h, width: c.w),
                             into: yp.baseAddress!, buffers: buffers)
                    }
                }
                #expect(shape.height == expected.oh && shape.width == expected.ow)
                let got = toImageMajor(output, n: c.n, c: c.cout, hw: expected.oh * expected.ow)
                // Float32 rounding grows with the number of products summed; an indexing error would be O(1).
                #expect(maxAbsDifference(got, expected.values) <= max(1e-5, 1e-6 * Float(c.cin * c.k * c.k)))
            }
        }
    }

    /// The stride-2 gather for every row length up to 40, with the source exactly as long as the gather needs.
    @Test func strideTwoGatherTakesEveryOtherValue() {
        for count in 1...40 {
            let source = UnsafeMutablePointer<Float>.allocate(capacity: 2 * count - 1)
            defer { source.deallocate() }
            for j in 0..<(2 * count - 1) { source[j] = Float(j) }
            var got = [Float](repeating: .nan, count: count + 1)
            got.withUnsafeMutableBufferPointer { gatherEven(source, to: $0.baseAddress!, count: count) }
            #expect(Array(got[0..<count]) == (0..<count).map { Float(2 * $0) }, "count \(count)")
            #expect(got[count].isNaN, "count \(count): wrote past the row")
        }
    }

    @Test func batchNormFoldsIntoTheConvolution() {
        var rng = SeededValues(seed: 7)
        let (cin, cout, k) = (3, 4, 3)
        let x = rng.array(cin * 5 * 5), w = rng.array(cout * cin * k * k)
        let bn = BatchNorm(weight: rng.array(cout), bias: rng.array(cout), runningMean: rng.array(cout),
                           runningVar: rng.array(cout).map { $0 * $0 + 0.1 })
        let plain = naiveConvolution(x, n: 1, cin: cin, h: 5, w: 5, weight: w, bias: [Float](repeating: 0, count: cout), cout: cout, k: k, s: 1, p: 1, relu: false)
        let expected = plain.values.enumerated().map { i, v in
            let o = i / 25
            return (v - bn.runningMean[o]) / (bn.runningVar[o] + 1e-5).squareRoot() * bn.weight[o] + bn.bias[o]
        }
        let conv = Conv2D(inChannels: cin, outChannels: cout, kernel: k, stride: 1, padding: 1, relu: false, convolution: w, batchNorm: bn)
        var input = x, output = [Float](repeating: 0, count: cout * 25), columns = [Float](repeating: 0, count: cin * k * k * 25)
        input.withUnsafeMutableBufferPointer { xp in output.withUnsafeMutableBufferPointer { yp in columns.withUnsafeMutableBufferPointer { cp in
            _ = conv(FeatureMap(data: xp.baseAddress!, channels: cin, batch: 1, height: 5, width: 5), into: yp.baseAddress!, buffers: [cp.baseAddress!])
        } } }
        #expect(maxAbsDifference(output, expected) <= 1e-5)
    }

    // Widths of 16 and more run the stem pool's eight-output vectors (with a scalar tail at 33 and 112 + 1).
    @Test(arguments: [(7, 7), (8, 5), (1, 1), (2, 9), (5, 16), (3, 33), (2, 113)])
    func maxPoolMatchesTheDefinition(_ size: (Int, Int)) {
        let (h, w) = size
        var rng = SeededValues(seed: UInt64(h * 31 + w))
        let (c, n) = (3, 2)
        var x = rng.array(c * n * h * w)
        let oh = (h + 2 - 3) / 2 + 1, ow = (w + 2 - 3) / 2 + 1
        var y = [Float](repeating: .nan, count: c * n * oh * ow)
        x.withUnsafeMutableBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in
            maxPool(FeatureMap(data: xp.baseAddress!, channels: c, batch: n, height: h, width: w), kernel: 3, stride: 2, padding: 1,
                    outHeight: oh, outWidth: ow, into: yp.baseAddress!)
        } }
        for plane in 0..<(c * n) { for oy in 0..<oh { for ox in 0..<ow {
            var m = -Float.infinity
            for dy in -1...1 { for dx in -1...1 {
                let iy = oy * 2 + dy, ix = ox * 2 + dx
                if iy >= 0 && iy < h && ix >= 0 && ix < w { m = max(m, x[(plane * h + iy) * w + ix]) }
            } }
            #expect(y[(plane * oh + oy) * ow + ox] == m)
        } } }
    }

    /// CBAM's pools across channels, `mean[p]` and `max[p]` of `scale[c]·F[c, p]`: planes in blocks of pixels, four
    /// channels at a time and the rest one by one, a block's tail past whole vectors, and a range of the pixels only.
    @Test(arguments: [(7, 655, 0..<655), (4, 9, 0..<9), (9, 600, 8..<523), (1, 20, 0..<20)])
    func channelMeanAndMaxMatchTheDefinition(channels c: Int, pixels hw: Int, range: Range<Int>) {
        var rng = SeededValues(seed: UInt64(c * 1000 + hw))
        let n = 2, image = 1
        var x = rng.array(c * n * hw)
        let scale = rng.array(c).map { $0 + 1 }
        var mean = [Float](repeating: .nan, count: hw), top = [Float](repeating: .nan, count: hw)
        x.withUnsafeMutableBufferPointer { xp in
            channelMeanAndMax(FeatureMap(data: xp.baseAddress!, channels: c, batch: n, height: 1, width: hw), image: image,
                              pixels: range, scale: scale, mean: &mean, max: &top)
        }
        for p in 0..<hw {
            guard range.contains(p) else {
                #expect(mean[p].isNaN && top[p].isNaN, "wrote pixel \(p) outside \(range)")
                continue
            }
            let values = (0..<c).map { x[($0 * n + image) * hw + p] * scale[$0] }
            #expect(abs(Double(mean[p]) - values.map(Double.init).reduce(0, +) / Double(c)) <= 1e-6)
            #expect(top[p] == values.max()!)
        }
    }

    /// The attention MLP on packed weights, `W2 · relu(W1 · x + b1) + b2` for each vector as a column of the output:
    /// small enough to run on one thread, and large enough (2·C·hidden ≥ `ChannelMLP.splitFrom`) that two threads
    /// share its rows.
    @Test(arguments: [(37, 5, 1), (300, 120, 3), (300, 120, 2)])
    func channelMLPMatchesTheDefinition(channels c: Int, hidden h: Int, vectors v: Int) {
        var rng = SeededValues(seed: UInt64(c * 100 + h + v))
        let w1 = rng.array(h * c), b1 = rng.array(h), w2 = rng.array(c * h), b2 = rng.array(c), x = rng.array(v * c)
        let mlp = ChannelMLP(channels: c, hidden: h, w1: w1, b1: b1, w2: w2, b2: b2)
        var expected = [Double](repeating: 0, count: c * v)
        for j in 0..<v {
            let hiddenOut = (0..<h).map { i in max(0, (0..<c).reduce(Double(b1[i])) { $0 + Double(w1[i * c + $1]) * Double(x[j * c + $1]) }) }
            for o in 0..<c { expected[o * v + j] = (0..<h).reduce(Double(b2[o])) { $0 + Double(w2[o * h + $1]) * hiddenOut[$1] } }
        }
        for threads in [1, 2] {
            var out = [Float](repeating: .nan, count: c * v)
            var scratch = [Float](repeating: .nan, count: ChannelMLP.scratchCount(channels: c, hidden: h, vectors: v))
            mlp(x, vectors: v, into: &out, scratch: &scratch, threads: threads)
            let worst = zip(out, expected).map { abs(Double($0) - $1) }.max()!
            #expect(worst <= 1e-4, "\(threads) threads: error \(worst)")
        }
    }

    /// Planes shorter than a vector, with a partial last vector, and past the AVX-512 loop's 32 floats a step.
    @Test(arguments: [1, 5, 37, 49, 64, 100])
    func averageAndMaxPoolsPerChannelAndImage(pixels hw: Int) {
        var rng = SeededValues(seed: 11 + UInt64(hw))
        let (c, n) = (5, 3)
        var x = rng.array(c * n * hw)
        var avg = [Float](repeating: 0, count: n * c), mx = avg, gap = avg
        x.withUnsafeMutableBufferPointer { xp in
            let map = FeatureMap(data: xp.baseAddress!, channels: c, batch: n, height: 1, width: hw)
            avg.withUnsafeMutableBufferPointer { a in mx.withUnsafeMutableBufferPointer { m in channelPools(map, average: a.baseAddress!, maximum: m.baseAddress!) } }
            gap.withUnsafeMutableBufferPointer { globalAveragePool(map, into: $0.baseAddress!) }
        }
        for ch in 0..<c { for b in 0..<n {
            let values = x[(ch * n + b) * hw..<(ch * n + b + 1) * hw]
            #expect(abs(avg[b * c + ch] - values.reduce(0, +) / Float(hw)) <= 1e-6)
            #expect(gap[b * c + ch] == avg[b * c + ch])
            #expect(mx[b * c + ch] == values.max()!)
        } }
    }

    /// `relu(F ⊗ M_c (⊗ M_s) + identity)`, with and without a spatial map, written over F as the blocks do, on two
    /// threads (the channels split between them), one image and several.
    @Test(arguments: [(1, true, 2), (7, true, 2), (49, true, 2), (49, false, 2), (100, true, 2), (100, false, 2),
                      (200, true, 1), (200, false, 1)])
    func finishPlanesMatchTheDefinition(pixels hw: Int, spatial: Bool, batch n: Int) {
        var rng = SeededValues(seed: 17 + UInt64(hw))
        let c = 3
        let original = rng.array(c * n * hw), identity = rng.array(c * n * hw)
        let channelMap = rng.array(n * c).map { ($0 + 1) / 2 }, spatialMap = rng.array(n * hw).map { ($0 + 1) / 2 }
        var x = original
        x.withUnsafeMutableBufferPointer { xp in
            let feature = FeatureMap(data: xp.baseAddress!, channels: c, batch: n, height: 1, width: hw)
            spatialMap.withUnsafeBufferPointer { sp in
                finishPlanes(feature, channelMap: channelMap, spatialMap: spatial ? sp.baseAddress! : nil, identity: identity,
                             into: xp.baseAddress!, threads: 2)
            }
        }
        for ch in 0..<c { for b in 0..<n { for p in 0..<hw {
            let i = (ch * n + b) * hw + p
            let expected = max(original[i] * channelMap[b * c + ch] * (spatial ? spatialMap[b * hw + p] : 1) + identity[i], 0)
            #expect(abs(x[i] - expected) <= 1e-6)
        } } }
    }

    /// A whole CBAM module (channel pools, MLP, spatial pools and convolution, refine) with its steps shared out
    /// between 2 and 3 threads gives the maps and the output that one thread gives: one image (each step over the
    /// whole batch) and four (image by image). Through `BlockAttention` a batch with fewer images than threads runs its
    /// passes over the map on one thread and its MLP on all of them (the last configuration; 512 channels are enough
    /// for the MLP to split its rows), so the model's passes no longer reach the first of these paths.
    @Test(arguments: [(1, 24, 9, 11), (4, 24, 9, 11), (1, 40, 40, 48), (1, 512, 7, 7)])
    func cbamSplitAcrossThreadsMatchesOneThread(batch n: Int, channels c: Int, height h: Int, width w: Int) {
        var rng = SeededValues(seed: UInt64(n * 1000 + c * 10 + h))
        let hidden = c / 8
        // Weights scaled by the fan-in, so that 512 channels do not saturate the sigmoid.
        let (s1, s2) = (2 / Float(c).squareRoot(), 2 / Float(hidden).squareRoot())
        let mlp = ChannelMLP(channels: c, hidden: hidden, w1: rng.array(hidden * c).map { $0 * s1 }, b1: rng.array(hidden),
                             w2: rng.array(c * hidden).map { $0 * s2 }, b2: rng.array(c))
        let cbam = CBAM(channel: ChannelAttention(mlp: mlp), spatial: SpatialAttention(kernel: 7, weight: rng.array(98), bias: 0.1))
        let feature = rng.array(c * n * h * w), identity = rng.array(c * n * h * w)
        let scratchCount = cbam.scratchCount(batch: n, height: h, width: w)
        var results: [(output: [Float], maps: [Float])] = []
        let configurations = [(threads: 1, mlp: 1), (2, 2), (3, 3), (1, 2)]
        for (threads, mlpThreads) in configurations {
            var x = feature
            var scratch = [Float](repeating: .nan, count: scratchCount)
            x.withUnsafeMutableBufferPointer { xp in scratch.withUnsafeMutableBufferPointer { sp in
                let map = FeatureMap(data: xp.baseAddress!, channels: c, batch: n, height: h, width: w)
                cbam.refine(map, identity: identity, into: xp.baseAddress!, scratch: sp.baseAddress!, threads: threads,
                            mlpThreads: mlpThreads)
            } }
            results.append((x, Array(scratch[0..<CBAM.mapCount(channels: c, batch: n, height: h, width: w)])))
        }
        for (i, configuration) in configurations.enumerated().dropFirst() {
            let (output, maps) = results[i]
            #expect(zip(output, results[0].output).allSatisfy { abs($0 - $1) <= 1e-6 }, "output with \(configuration)")
            #expect(zip(maps, results[0].maps).allSatisfy { abs($0 - $1) <= 1e-6 }, "maps with \(configuration)")
        }
        #expect(results[0].maps.allSatisfy { $0 > 0 && $0 < 1 })
    }

    @Test(arguments: [(1, 1, 1), (3, 5, 7), (17, 9, 33), (64, 2, 100)])
    func gemmShapesAndTransposes(_ shape: (Int, Int, Int)) {
        let (m, n, k) = shape
        var rng = SeededValues(seed: UInt64(m * n * k))
        let a = rng.array(m * k), b = rng.array(k * n)
        var expected = [Float](repeating: 0, count: m * n)
        for i in 0..<m { for j in 0..<n { expected[i * n + j] = (0..<k).reduce(0) { $0 + a[i * k + $1] * b[$1 * n + j] } } }
        // A^T stored [k, m], B^T stored [n, k]: same product.
        var at = [Float](repeating: 0, count: m * k), bt = [Float](repeating: 0, count: k * n)
        for i in 0..<m { for j in 0..<k { at[j * m + i] = a[i * k + j] } }
        for i in 0..<k { for j in 0..<n { bt[j * k + i] = b[i * n + j] } }
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            var c = [Float](repeating: 1, count: m * n)
            (ta ? at : a).withUnsafeBufferPointer { ap in (tb ? bt : b).withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                gemm(m: m, n: n, k: k, a: ap.baseAddress!, lda: ta ? m : k, transposeA: ta, b: bp.baseAddress!, ldb: tb ? k : n,
                     transposeB: tb, c: cp.baseAddress!, ldc: n)
            } } }
            #expect(maxAbsDifference(c, expected) <= 1e-4, "transposeA \(ta) transposeB \(tb)")
        }
    }

    /// Kernels of 3 and 7 on maps narrower and wider than the 8-column vectors, with partial last vectors.
    @Test(arguments: [(3, 5, 6), (7, 4, 4), (7, 9, 13), (3, 2, 17)])
    func spatialAttentionMatchesTheDefinition(_ k: Int, _ h: Int, _ w: Int) {
        var rng = SeededValues(seed: UInt64(k * 100 + h * 10 + w))
        let (c, n) = (4, 2)
        var x = rng.array(c * n * h * w)
        let channelMap = rng.array(n * c).map { ($0 + 1) / 2 }
        let weight = rng.array(2 * k * k)
        let attention = SpatialAttention(kernel: k, weight: weight, bias: 0.25)
        // The whole batch on one thread and on three (the images shared out), and image by image (the path of a batch
        // whose images fit in cache).
        var maps = [[Float]](repeating: [Float](repeating: .nan, count: n * h * w), count: 3)
        for (way, threads) in [(0, 1), (1, 3), (2, 1)] {
            var scratch = [Float](repeating: .nan, count: attention.scratchCount(batch: n, height: h, width: w))
            x.withUnsafeMutableBufferPointer { xp in maps[way].withUnsafeMutableBufferPointer { mp in scratch.withUnsafeMutableBufferPointer { sp in
                let feature = FeatureMap(data: xp.baseAddress!, channels: c, batch: n, height: h, width: w)
                if way < 2 {
                    attention(feature, channelMap: channelMap, into: mp.baseAddress!, scratch: sp.baseAddress!, threads: threads)
                } else {
                    channelMap.withUnsafeBufferPointer { cp in
                        for b in 0..<n {
                            attention.map(feature, image: b, channelMap: cp.baseAddress! + b * c, into: mp.baseAddress! + b * h * w,
                                          scratch: sp.baseAddress!)
                        }
                    }
                }
            } } }
        }
        for b in 0..<n {
            // [mean; max] over channels of F' = M_c ⊗ F, then the k×k conv with zero padding, then σ.
            var pooled = [Float](repeating: 0, count: 2 * h * w)
            for p in 0..<(h * w) {
                let v = (0..<c).map { x[($0 * n + b) * h * w + p] * channelMap[b * c + $0] }
                pooled[p] = v.reduce(0, +) / Float(c)
                pooled[h * w + p] = v.max()!
            }
            let conv = naiveConvolution(pooled, n: 1, cin: 2, h: h, w: w, weight: weight, bias: [0.25], cout: 1, k: k, s: 1,
                                        p: k / 2, relu: false)
            let expected = conv.values.map { 1 / (1 + exp(-$0)) }
            for map in maps { #expect(maxAbsDifference(map[b * h * w..<(b + 1) * h * w], expected) <= 1e-6) }
        }
    }

    @Test func softmaxAndTopK() {
        let p = softmax([1, 2, 3, 1000] as [Float])
        #expect(p[3] == 1 && p[0] == 0)
        let q = softmax([0, log(3)] as [Float])
        #expect(abs(q[0] - 0.25) < 1e-6 && abs(q[1] - 0.75) < 1e-6)
        #expect(topK([0.1, 0.5, 0.2, 0.5, 0.05], k: 3) == [ClassScore(index: 1, score: 0.5), ClassScore(index: 3, score: 0.5), ClassScore(index: 2, score: 0.2)])
        #expect(topK([1, 2], k: 5).map(\.index) == [1, 0])
        #expect(topK([1, 2], k: 0).isEmpty)
    }

    @Test func workspaceIsReusedAndGrowsOnlyForLargerInputs() throws {
        let fixture = try ParityFixture("basic_cifar_selective")
        let model = try CBAMModel.load(directory: fixture.directory)
        let one = Array(fixture.input.values[0..<(3 * 32 * 32)])
        _ = try model.forward(one, batch: 1, height: 32, width: 32, attention: true)
        let afterFirst = model.workspace.allocations
        for _ in 0..<3 { _ = try model.forward(one, batch: 1, height: 32, width: 32, attention: true) }
        _ = try model.forward(Array(one[0..<(3 * 16 * 16)]), batch: 1, height: 16, width: 16, attention: false)
        #expect(model.workspace.allocations == afterFirst)
        _ = try fixture.input.values.withUnsafeBufferPointer {
            try model.forward($0, batch: 3, height: 32, width: 32, attention: false, slices: 1)
        }
        #expect(model.workspace.allocations > afterFirst)
    }
}
