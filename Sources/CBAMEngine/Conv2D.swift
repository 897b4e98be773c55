/// A convolution with its BatchNorm folded in at load time and an optional fused ReLU:
/// `y = relu?(W' ∗ x + b')`, `W' = W·γ/√(σ²+ε)`, `b' = β − μ·γ/√(σ²+ε)`.
/// A 1x1 stride-1 convolution is a plain GEMM on the input; the others go through `im2col`, except that a 3x3
/// stride-1 one may run as Winograd F(2x2, 3x3) or F(4x4, 3x3), with weights transformed at load: which of the
/// three is fastest depends on the map, the batch and the channels, so the execution plan measures them.
struct Conv2D: Sendable {
    let inChannels: Int
    let outChannels: Int
    let kernel: Int
    let stride: Int
    let padding: Int
    let relu: Bool
    /// `[outChannels, inChannels·kernel·kernel]`, packed for the GEMM kernel.
    let weight: PackedWeights
    let bias: [Float]
    /// The same convolution in the Winograd domains, for 3x3 stride-1 "same" convolutions.
    let winograd2: WinogradConvolution?
    let winograd4: WinogradConvolution?

    /// How a pass computes this convolution.
    enum Algorithm: Sendable {
        /// im2col (where needed) and one GEMM per column tile.
        case gemm
        case winograd2x2
        case winograd4x4
    }

    init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int, relu: Bool, weight: [Float], bias: [Float]) {
        precondition(weight.count == outChannels * inChannels * kernel * kernel && bias.count == outChannels)
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.relu = relu
        self.weight = PackedWeights(weight, rows: outChannels, columns: inChannels * kernel * kernel)
        self.bias = bias
        let sameThreeByThree = kernel == 3 && stride == 1 && padding == 1
        winograd2 = sameThreeByThree ? WinogradConvolution(.f2x2, inChannels: inChannels, outChannels: outChannels, relu: relu,
                                                           weight: weight, bias: bias) : nil
        winograd4 = sameThreeByThree ? WinogradConvolution(.f4x4, inChannels: inChannels, outChannels: outChannels, relu: relu,
                                                           weight: weight, bias: bias) : nil
    }

    /// Folds BatchNorm statistics `(γ, β, μ, σ²)` into a bias-free convolution weight `[Cout, Cin, k, k]`.
    init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int, relu: Bool,
         convolution w: [Float], batchNorm bn: BatchNorm) {
        let perOutput = inChannels * kernel * kernel
        var folded = w
        var bias = [Float](repeating: 0, count: outChannels)
        for o in 0..<outChannels {
            let scale = bn.scale(o)
            for i in 0..<perOutput { folded[o * perOutput + i] *= scale }
            bias[o] = bn.shift(o)
        }
        self.init(inChannels: inChannels, outChannels: outChannels, kernel: kernel, stride: stride, padding: padding,
                  relu: relu, weight: folded, bias: bias)
    }

    func outputSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 * padding - kernel) / stride + 1, (width + 2 * padding - kernel) / stride + 1)
    }

    var needsColumns: Bool { kernel != 1 || stride != 1 || padding != 0 }

    /// The algorithms worth measuring for a pass of this shape: for a 3x3 stride-1 convolution both Winograd variants
    /// (F(4x4) on maps of at least 4x4) and the GEMM; for the others the GEMM alone.
    func candidates(batch: Int, height: Int, width: Int) -> [Algorithm] {
        guard winograd2 != nil else { return [.gemm] }
        return height >= 4 && width >= 4 ? [.winograd4x4, .winograd2x2, .gemm] : [.winograd2x2, .gemm]
    }

    /// The algorithm without a measurement (tests, and any pass that has no plan): F(4x4) where the pass has at least
    /// 16 tiles to amortise its 36 GEMMs, else the GEMM.
    func defaultAlgorithm(batch: Int, height: Int, width: Int) -> Algorithm {
        guard let winograd4 else { return .gemm }
        return batch * winograd4.tiles(height) * winograd4.tiles(width) >= 16 ? .winograd4x4 : .gemm
    }

    private func winograd(_ algorithm: Algorithm) -> WinogradConvolution? {
        switch algorithm {
        case .gemm: nil
        case .winograd2x2: winograd2
        case .winograd4x4: winograd4
        }
    }

    /// Floats of each thread's buffer for an input of this shape with `algorithm`: one tile of im2col columns (0 for
    /// a plain GEMM), or one Winograd block.
    func bufferCount(batch: Int, height: Int, width: Int, threads: Int, algorithm: Algorithm) -> Int {
        if let winograd = winograd(algorithm) {
            return winograd.bufferCount(batch: batch, height: height, width: width, threads: threads)
        }
        guard needsColumns else { return 0 }
        let (oh, ow) = outputSize(height: height, width: width)
        let depth = inChannels * kernel * kernel
        if Self.sharesOutputChannels(columns: batch * oh * ow, threads: threads) { return depth * batch * oh * ow }
        return depth * rowsPerTile(rows: batch * oh, width: ow, depth: depth, threads: threads) * ow
    }

    /// The most any candidate algorithm needs.
    func bufferCount(batch: Int, height: Int, width: Int, threads: Int) -> Int {
        candidates(batch: batch, height: height, width: width).map {
            bufferCount(batch: batch, height: height, width: width, threads: threads, algorithm: $0)
        }.max()!
    }

    /// Output rows per tile: at most about `tileColumns` columns, cut as `rowsPerPart` cuts them for the threads.
    func rowsPerTile(rows: Int, width: Int, depth: Int, threads: Int) -> Int {
        rowsPerPart(rows, atMost: Self.tileColumns(depth: depth) / width, threads: threads)
    }

    func multiplyAdds(height: Int, width: Int) -> Int {
        let (oh, ow) = outputSize(height: height, width: width)
        return outChannels * inChannels * kernel * kernel * oh * ow
    }

    /// Runs the convolution on `input`, writing `[Cout, N, Ho, Wo]` to `output` (which must not alias `input`),
    /// on as many threads as there are `buffers` (each thread's own scratch, `bufferCount` floats).
    ///
    /// Off the Winograd path, the output columns (one per output pixel of the batch) are done in tiles of whole
    /// output rows, each tile unfolded, multiplied and given its bias and ReLU while it is still in cache.
    @discardableResult
    func callAsFunction(_ input: FeatureMap, into output: UnsafeMutablePointer<Float>,
                        buffers: [UnsafeMutablePointer<Float>], algorithm: Algorithm? = nil) -> FeatureMap {
        precondition(input.channels == inChannels, "Conv2D: input has \(input.channels) channels, expected \(inChannels)")
        let algorithm = algorithm ?? defaultAlgorithm(batch: input.batch, height: input.height, width: input.width)
        if let winograd = winograd(algorithm) {
            return winograd(input, into: output, buffers: buffers)
        }
        let (oh, ow) = outputSize(height: input.height, width: input.width)
        let out = FeatureMap(data: output, channels: outChannels, batch: input.batch, height: oh, width: ow)
        let k = inChannels * kernel * kernel
        let rows = input.batch * oh
        if Self.sharesOutputChannels(columns: out.plane, threads: buffers.count) {
            // Few columns (a 4x4 or 7x7 map at batch 1): column tiles would leave each thread a few, partly filled
            // vectors and all of the weights to read, so the threads share the output channels instead, each with
            // every column (unfolded by each thread into its own buffer: a small map's columns are a few KB).
            bias.withUnsafeBufferPointer { b in
                parallelFor(buffers.count, threads: buffers.count) { part, thread in
                    let source: UnsafePointer<Float>
                    if needsColumns {
                        im2col(input, kernel: kernel, stride: stride, padding: padding, outHeight: oh, outWidth: ow,
                               rows: 0..<rows, into: buffers[thread])
                        source = UnsafePointer(buffers[thread])
                    } else {
                        source = UnsafePointer(input.data)
                    }
                    weight.multiply(rows: weight.rowRange(part: part, of: buffers.count), source, ldb: out.plane, n: out.plane,
                                    into: output, ldc: out.plane, bias: b.baseAddress, relu: relu)
                }
            }
            return out
        }
        let perTile = rowsPerTile(rows: rows, width: ow, depth: k, threads: buffers.count)
        bias.withUnsafeBufferPointer { b in
            parallelFor((rows + perTile - 1) / perTile, threads: buffers.count) { tile, thread in
                let row = tile * perTile
                let tileRows = min(perTile, rows - row)
                let (first, count) = (row * ow, tileRows * ow)
                let columns = buffers[thread]
                let source: UnsafePointer<Float>, ldb: Int
                if needsColumns {
                    im2col(input, kernel: kernel, stride: stride, padding: padding, outHeight: oh, outWidth: ow,
                           rows: row..<row + tileRows, into: columns)
                    (source, ldb) = (UnsafePointer(columns), count)
                } else {
                    (source, ldb) = (UnsafePointer(input.data + first), out.plane)
                }
                weight.multiply(source, ldb: ldb, n: count, into: output + first, ldc: out.plane, bias: b.baseAddress, relu: relu)
            }
        }
        return out
    }

    /// Whether a pass on `threads` threads splits the output channels rather than the output columns: with fewer
    /// than 128 columns per thread (two AVX-512 tiles' width). Split by columns, each thread reads all of the layer's
    /// weights for its few columns; ResNet-50's 14x14 maps at batch 1 (196 columns) were split by columns up to the
    /// eighth session (64 a thread): by channels, two threads, runs in turn classified by a cache line's round trip
    /// before and after each, 38.03 → 37.56 ms on cores that share an L3 and 39.58 → 38.07 over all runs (ninth
    /// session; 512 a thread, which also splits the 28x28 maps by channels, 37.64 and 38.21).
    static func sharesOutputChannels(columns: Int, threads: Int) -> Bool { threads > 1 && columns < 128 * threads }

    /// Output columns per tile: the tile's unfolded input (`depth` × columns floats) about 1 MB, so it stays in L2,
    /// but at least 128 columns.
    static func tileColumns(depth: Int) -> Int { max(128, (1 << 18) / max(depth, 1)) }
}

/// BatchNorm2d in inference mode: `γ·(x − μ)/√(σ² + ε) + β`, per channel.
struct BatchNorm {
    let weight: [Float]
    let bias: [Float]
    let runningMean: [Float]
    let runningVar: [Float]
    static let epsilon: Float = 1e-5

    func scale(_ c: Int) -> Float { weight[c] / (runningVar[c] + Self.epsilon).squareRoot() }
    func shift(_ c: Int) -> Float { bias[c] - runningMean[c] * scale(c) }
}
