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
        panels.withUnsafeBufferPointer { a in
            cbam_gemm_packed(Int32(rows), Int32(n), Int32(columns), a.baseAddress!, b, ldb, c, ldc, bias, relu ? 1 : 0)
        }
    }
}

/// The engine's GEMM kernel, as seen from outside the engine.
public enum GEMMKernel {
    /// The instruction set it runs with on this CPU: "avx512", "avx2" or "portable" (`CBAM_KERNELS` may lower it).
    public static var instructionSet: String { String(cString: cbam_isa_name(cbam_isa_selected())) }
}
