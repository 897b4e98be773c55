/// A convolution with its BatchNorm folded in at load time and an optional fused ReLU:
/// `y = relu?(W' ∗ x + b')`, `W' = W·γ/√(σ²+ε)`, `b' = β − μ·γ/√(σ²+ε)`.
/// A 1x1 stride-1 convolution is a plain GEMM on the input; a 3x3 stride-1 one on a large enough map runs as
/// Winograd F(2x2, 3x3) with weights transformed at load; the others go through `im2col`.
struct Conv2D: Sendable {
    let inChannels: Int
    let outChannels: Int
    let kernel: Int
    let stride: Int
    let padding: Int
    let relu: Bool
    /// `[outChannels, inChannels·kernel·kernel]`, row-major.
    let weight: [Float]
    let bias: [Float]
    /// The same convolution in the Winograd domain, for 3x3 stride-1 "same" convolutions.
    let winograd: WinogradConvolution?

    init(inChannels: Int, outChannels: Int, kernel: Int, stride: Int, padding: Int, relu: Bool, weight: [Float], bias: [Float]) {
        precondition(weight.count == outChannels * inChannels * kernel * kernel && bias.count == outChannels)
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        self.relu = relu
        self.weight = weight
        self.bias = bias
        let sameThreeByThree = kernel == 3 && stride == 1 && padding == 1
        winograd = sameThreeByThree ? WinogradConvolution(.f4x4, inChannels: inChannels, outChannels: outChannels, relu: relu,
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

    /// Whether a pass of this shape runs in the Winograd domain: only where there are enough tiles to amortise
    /// the 16 GEMMs (on tiny maps the transformed weights, 16/9 the size, cost more than the multiplies saved).
    func usesWinograd(batch: Int, height: Int, width: Int) -> Bool {
        guard let winograd else { return false }
        return batch * winograd.tiles(height) * winograd.tiles(width) >= Self.winogradMinimumTiles
    }
    static let winogradMinimumTiles = 16

    /// Floats of each thread's buffer for an input of this shape: one tile of im2col columns (0 for a plain GEMM),
    /// or one Winograd block.
    func bufferCount(batch: Int, height: Int, width: Int, threads: Int) -> Int {
        if usesWinograd(batch: batch, height: height, width: width), let winograd {
            return winograd.bufferCount(batch: batch, height: height, width: width, threads: threads)
        }
        guard needsColumns else { return 0 }
        let (oh, ow) = outputSize(height: height, width: width)
        let depth = inChannels * kernel * kernel
        return depth * rowsPerTile(rows: batch * oh, width: ow, depth: depth, threads: threads) * ow
    }

    /// Output rows per tile: about `tileColumns` columns, and at least one tile per thread when there are rows enough.
    func rowsPerTile(rows: Int, width: Int, depth: Int, threads: Int) -> Int {
        max(1, min(rows, Self.tileColumns(depth: depth) / width, (rows + threads - 1) / threads))
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
                        buffers: [UnsafeMutablePointer<Float>]) -> FeatureMap {
        precondition(input.channels == inChannels, "Conv2D: input has \(input.channels) channels, expected \(inChannels)")
        if usesWinograd(batch: input.batch, height: input.height, width: input.width), let winograd {
            return winograd(input, into: output, buffers: buffers)
        }
        let (oh, ow) = outputSize(height: input.height, width: input.width)
        let out = FeatureMap(data: output, channels: outChannels, batch: input.batch, height: oh, width: ow)
        let k = inChannels * kernel * kernel
        let rows = input.batch * oh
        let perTile = rowsPerTile(rows: rows, width: ow, depth: k, threads: buffers.count)
        weight.withUnsafeBufferPointer { w in
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
                    // C starts as the bias and the GEMM adds to it (beta = 1 also spares OpenBLAS its zeroing pass).
                    for c in 0..<outChannels { fill(output + first + c * out.plane, with: b[c], count: count) }
                    gemm(m: outChannels, n: count, k: k, a: w.baseAddress!, lda: k, b: source, ldb: ldb,
                         c: output + first, ldc: out.plane, beta: 1)
                    if relu { rectify(output + first, channels: outChannels, count: count, stride: out.plane) }
                }
            }
        }
        return out
    }

    /// Output columns per tile: the tile's unfolded input (`depth` × columns floats) about 1 MB, so it stays in L2,
    /// but at least 128 columns, so the GEMM's repacking of the weights is amortised.
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

/// `x[c·stride + i] = max(x[c·stride + i], 0)` for `i < count`: the fused ReLU.
func rectify(_ x: UnsafeMutablePointer<Float>, channels: Int, count: Int, stride: Int) {
    let zero = SIMD16<Float>()
    for c in 0..<channels {
        let row = x + c * stride
        var i = 0
        while i + 16 <= count {
            let v = UnsafeRawPointer(row + i).loadUnaligned(as: SIMD16<Float>.self)
            UnsafeMutableRawPointer(row + i).storeBytes(of: v.replacing(with: zero, where: v .< zero), as: SIMD16<Float>.self)
            i += 16
        }
        while i < count { row[i] = max(row[i], 0); i += 1 }
    }
}
