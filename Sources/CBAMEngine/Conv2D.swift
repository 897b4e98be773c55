/// A convolution with its BatchNorm folded in at load time and an optional fused ReLU:
/// `y = relu?(W' ∗ x + b')`, `W' = W·γ/√(σ²+ε)`, `b' = β − μ·γ/√(σ²+ε)`.
/// A 1x1 stride-1 convolution is a plain GEMM on the input; the others go through `im2col`.
struct Conv2D {
    let inChannels: Int
    let outChannels: Int
    let kernel: Int
    let stride: Int
    let padding: Int
    let relu: Bool
    /// `[outChannels, inChannels·kernel·kernel]`, row-major.
    let weight: [Float]
    let bias: [Float]

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

    /// Floats of im2col columns this convolution needs for an input of this shape (0 for a plain GEMM).
    func columnCount(batch: Int, height: Int, width: Int) -> Int {
        guard needsColumns else { return 0 }
        let (oh, ow) = outputSize(height: height, width: width)
        return inChannels * kernel * kernel * batch * oh * ow
    }

    func multiplyAdds(height: Int, width: Int) -> Int {
        let (oh, ow) = outputSize(height: height, width: width)
        return outChannels * inChannels * kernel * kernel * oh * ow
    }

    /// Runs the convolution on `input`, writing `[Cout, N, Ho, Wo]` to `output` (which must not alias `input`).
    @discardableResult
    func callAsFunction(_ input: FeatureMap, into output: UnsafeMutablePointer<Float>,
                        columns: UnsafeMutablePointer<Float>) -> FeatureMap {
        precondition(input.channels == inChannels, "Conv2D: input has \(input.channels) channels, expected \(inChannels)")
        let (oh, ow) = outputSize(height: input.height, width: input.width)
        let out = FeatureMap(data: output, channels: outChannels, batch: input.batch, height: oh, width: ow)
        let k = inChannels * kernel * kernel
        let source: UnsafeMutablePointer<Float>
        if needsColumns {
            im2col(input, kernel: kernel, stride: stride, padding: padding, outHeight: oh, outWidth: ow, into: columns)
            source = columns
        } else {
            source = input.data
        }
        weight.withUnsafeBufferPointer { w in
            gemm(m: outChannels, n: out.plane, k: k, a: w.baseAddress!, lda: k, b: source, ldb: out.plane,
                 c: output, ldc: out.plane)
        }
        bias.withUnsafeBufferPointer { b in
            addBias(b.baseAddress!, to: output, channels: outChannels, plane: out.plane, relu: relu)
        }
        return out
    }
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

/// `x[c, i] += bias[c]`, then `max(x, 0)` when `relu`: the epilogue of every convolution.
func addBias(_ bias: UnsafePointer<Float>, to x: UnsafeMutablePointer<Float>, channels: Int, plane: Int, relu: Bool) {
    for c in 0..<channels {
        let b = bias[c]
        let row = x + c * plane
        if relu {
            for i in 0..<plane { row[i] = max(row[i] + b, 0) }
        } else {
            for i in 0..<plane { row[i] += b }
        }
    }
}
