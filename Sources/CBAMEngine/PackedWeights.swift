import CBAMKernels

/// A layer's weight matrix `[rows, columns]`, packed once at load into the panels that the GEMM kernel reads
/// (`CBAMKernels`: six rows at a time, column by column), so that no pass repacks it.
struct PackedWeights: Sendable {
    let rows: Int
    let columns: Int
    private let panels: [Float]

    /// Packs `matrix` (row-major, `rowStride` floats a row).
    init(_ matrix: UnsafePointer<Float>, rows: Int, columns: Int, rowStride: Int) {
        precondition(rows > 0 && columns > 0 && rowStride >= columns, "PackedWeights: bad shape \(rows)x\(columns)")
        self.rows = rows
        self.columns = columns
        panels = [Float](unsafeUninitializedCapacity: cbam_gemm_packed_count(Int32(rows), Int32(columns))) { buffer, count in
            cbam_gemm_pack(matrix, rowStride, Int32(rows), Int32(columns), buffer.baseAddress!)
            count = buffer.count
        }
    }

    init(_ matrix: [Float], rows: Int, columns: Int) {
        precondition(matrix.count == rows * columns, "PackedWeights: \(matrix.count) floats for \(rows)x\(columns)")
        self = matrix.withUnsafeBufferPointer { PackedWeights($0.baseAddress!, rows: rows, columns: columns, rowStride: columns) }
    }

    /// `c[rows × n] = relu?(W · b + bias)`: `b` is `columns × n` (`ldb` floats a row), `bias` one value per row
    /// (or none); `c` (`ldc` floats a row) must not overlap `b`.
    func multiply(_ b: UnsafePointer<Float>, ldb: Int, n: Int, into c: UnsafeMutablePointer<Float>, ldc: Int,
                  bias: UnsafePointer<Float>? = nil, relu: Bool = false) {
        multiply(rows: 0..<rows, b, ldb: ldb, n: n, into: c, ldc: ldc, bias: bias, relu: relu)
    }

    /// The same for the output rows `rows` alone (`c` and `bias` still indexed from row 0); `rows` starts on a panel.
    func multiply(rows part: Range<Int>, _ b: UnsafePointer<Float>, ldb: Int, n: Int, into c: UnsafeMutablePointer<Float>,
                  ldc: Int, bias: UnsafePointer<Float>? = nil, relu: Bool = false) {
        precondition(part.lowerBound % Self.panelRows == 0 && part.upperBound <= rows, "PackedWeights: rows \(part) of \(rows)")
        guard !part.isEmpty else { return }
        panels.withUnsafeBufferPointer { a in
            cbam_gemm_packed(Int32(part.count), Int32(n), Int32(columns), a.baseAddress! + part.lowerBound * columns, b, ldb,
                             c + part.lowerBound * ldc, ldc, bias.map { $0 + part.lowerBound }, relu ? 1 : 0)
        }
    }

    /// The same product with its rows shared between `threads` threads, whole panels each: for a product of few
    /// columns on large weights (the classifier, the attention MLPs at batch 1), where column tiles would leave each
    /// thread all of the weights to read.
    func multiply(sharedBy threads: Int, _ b: UnsafePointer<Float>, ldb: Int, n: Int, into c: UnsafeMutablePointer<Float>,
                  ldc: Int, bias: UnsafePointer<Float>? = nil, relu: Bool = false) {
        parallelFor(threads, threads: threads) { part, _ in
            multiply(rows: rowRange(part: part, of: threads), b, ldb: ldb, n: n, into: c, ldc: ldc, bias: bias, relu: relu)
        }
    }

    /// Rows per packed panel: a split of the rows between threads starts each part on one.
    static let panelRows = Int(CBAM_GEMM_ROWS)

    /// The rows cut into `parts` ranges of whole panels (the last may end mid-panel), for threads to share.
    func rowRange(part: Int, of parts: Int) -> Range<Int> {
        let panels = (rows + Self.panelRows - 1) / Self.panelRows
        return Swift.min(rows, part * panels / parts * Self.panelRows)..<Swift.min(rows, (part + 1) * panels / parts * Self.panelRows)
    }
}

/// The engine's GEMM kernel, as seen from outside the engine.
public enum GEMMKernel {
    /// The instruction set it runs with on this CPU: "avx512", "avx2" or "portable" (`CBAM_KERNELS` may lower it).
    public static var instructionSet: String { String(cString: cbam_isa_name(cbam_isa_selected())) }
}
