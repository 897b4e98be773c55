/// The two-layer MLP of CBAM's channel attention and of squeeze-and-excitation, `W2 · relu(W1 · x + b1) + b2`
/// (`W1` is `[hidden, channels]`, `W2` `[channels, hidden]`), for a few vectors `x` at once: CBAM's two pooled
/// descriptors of each image, SE's one. The weights are packed at load for the GEMM kernel and the vectors are its
/// columns, so each weight is read once per call, prefetched; ResNet-50's last stage has 2 MB of them a block, which
/// OpenBLAS read at 7 GB/s (290 µs a block, one thread). Large weights are split between threads by rows.
struct ChannelMLP: Sendable {
    let channels: Int
    let hidden: Int
    let w1: PackedWeights, b1: [Float]
    let w2: PackedWeights, b2: [Float]

    /// `w1` and `w2` row-major, `b1` and `b2` zeros when the checkpoint has none.
    init(channels: Int, hidden: Int, w1: [Float], b1: [Float], w2: [Float], b2: [Float]) {
        precondition(b1.count == hidden && b2.count == channels, "ChannelMLP: biases of \(b1.count) and \(b2.count) floats")
        self.channels = channels
        self.hidden = hidden
        self.w1 = PackedWeights(w1, rows: hidden, columns: channels)
        self.w2 = PackedWeights(w2, rows: channels, columns: hidden)
        self.b1 = b1
        self.b2 = b2
    }

    /// Floats of scratch for `vectors` vectors: the vectors as columns, and the hidden layer.
    static func scratchCount(channels: Int, hidden: Int, vectors: Int) -> Int { vectors * (channels + hidden) }

    /// Weights (floats of `W1` and `W2`) from which a call is split between threads. Not measured: a guess at where
    /// the two fork-joins (a few µs each) cost less than streaming half the weights saves (256 KB: about 20 µs).
    static let splitFrom = 1 << 16

    /// `output[c·vectors + j]` = the MLP of vector j (`input[j·channels ..< (j+1)·channels]`), `b2` included.
    func callAsFunction(_ input: UnsafePointer<Float>, vectors: Int, into output: UnsafeMutablePointer<Float>,
                        scratch: UnsafeMutablePointer<Float>, threads: Int = 1) {
        let columns = scratch, hiddenOut = scratch + vectors * channels
        for j in 0..<vectors {
            for c in 0..<channels { columns[c * vectors + j] = input[j * channels + c] }
        }
        let parts = 2 * channels * hidden >= Self.splitFrom ? threads : 1
        b1.withUnsafeBufferPointer { b in
            w1.multiply(sharedBy: parts, columns, ldb: vectors, n: vectors, into: hiddenOut, ldc: vectors, bias: b.baseAddress,
                        relu: true)
        }
        b2.withUnsafeBufferPointer { b in
            w2.multiply(sharedBy: parts, hiddenOut, ldb: vectors, n: vectors, into: output, ldc: vectors, bias: b.baseAddress)
        }
    }
}
