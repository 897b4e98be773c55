import CBAMKernels
import Testing
@testable import CBAMEngine

/// The GEMM kernel on prepacked weights, every instruction set this CPU runs (the portable one always), against a
/// product summed in double: shapes that leave partial row panels (m not a multiple of 6) and partial column vectors
/// (n not a multiple of 8 or 16, or 1-4 columns past whole vectors), row strides wider than the rows, the fused bias
/// and ReLU, and nothing written outside the output.
struct PackedGEMMTests {
    struct Shape: CustomTestStringConvertible, Sendable {
        let m, n, k: Int
        var testDescription: String { "\(m)x\(k) · \(k)x\(n)" }
    }

    static let shapes: [Shape] = [
        .init(m: 1, n: 1, k: 1), .init(m: 5, n: 7, k: 3), .init(m: 6, n: 16, k: 8), .init(m: 7, n: 17, k: 9),
        .init(m: 13, n: 63, k: 31), .init(m: 12, n: 64, k: 64), .init(m: 19, n: 65, k: 5), .init(m: 48, n: 150, k: 100),
        // 1-4 columns past whole 16-column vectors (AVX-512 folds them into the block before as extra columns:
        // after a full 64-column block, or in the last, narrower one), odd and even k; and 1-4 columns alone.
        .init(m: 8, n: 34, k: 7), .init(m: 13, n: 51, k: 2), .init(m: 6, n: 196, k: 33), .init(m: 5, n: 4, k: 1),
        .init(m: 17, n: 49, k: 40), .init(m: 11, n: 68, k: 6), .init(m: 23, n: 84, k: 3), .init(m: 4, n: 2, k: 5),
    ]

    static var instructionSets: [cbam_isa] {
        [CBAM_ISA_PORTABLE, CBAM_ISA_AVX2, CBAM_ISA_AVX512].filter { cbam_isa_supported($0) != 0 }
    }

    @Test(arguments: shapes)
    func matchesDoubleProductOnEveryInstructionSet(_ s: Shape) {
        var rng = SeededValues(seed: UInt64(s.m * 10_000 + s.n * 100 + s.k))
        let (ldb, ldc) = (s.n + 3, s.n + 5)
        let a = rng.array(s.m * s.k), b = rng.array(s.k * ldb), bias = rng.array(s.m)
        var packed = [Float](repeating: .nan, count: cbam_gemm_packed_count(Int32(s.m), Int32(s.k)))
        cbam_gemm_pack(a, s.k, Int32(s.m), Int32(s.k), &packed)
        for isa in Self.instructionSets {
            for (withBias, relu) in [(false, false), (true, false), (true, true)] {
                let sentinel: Float = 12345
                var c = [Float](repeating: sentinel, count: s.m * ldc)
                withBias
                    ? cbam_gemm_packed_isa(isa, Int32(s.m), Int32(s.n), Int32(s.k), packed, b, ldb, &c, ldc, bias, relu ? 1 : 0)
                    : cbam_gemm_packed_isa(isa, Int32(s.m), Int32(s.n), Int32(s.k), packed, b, ldb, &c, ldc, nil, relu ? 1 : 0)
                var worst = 0.0
                for i in 0..<s.m {
                    for j in 0..<ldc {
                        let got = c[i * ldc + j]
                        guard j < s.n else {
                            #expect(got == sentinel, "\(String(cString: cbam_isa_name(isa))) wrote past column \(s.n) in row \(i)")
                            continue
                        }
                        var want = withBias ? Double(bias[i]) : 0
                        for p in 0..<s.k { want += Double(a[i * s.k + p]) * Double(b[p * ldb + j]) }
                        if relu { want = max(want, 0) }
                        worst = max(worst, abs(Double(got) - want))
                    }
                }
                #expect(worst <= 1e-5 * Double(s.k), "\(String(cString: cbam_isa_name(isa))) bias \(withBias) relu \(relu): error \(worst)")
            }
        }
    }

    @Test func selectedInstructionSetIsOneThisCPURuns() {
        #expect(cbam_isa_supported(cbam_isa_selected()) != 0)
        #expect(["portable", "avx2", "avx512"].contains(GEMMKernel.instructionSet))
    }

    @Test func packingPadsThePartialPanelWithZeros() {
        let a: [Float] = (1...14).map(Float.init)  // 7 x 2
        var packed = [Float](repeating: .nan, count: cbam_gemm_packed_count(7, 2))
        cbam_gemm_pack(a, 2, 7, 2, &packed)
        #expect(packed.count == 24)
        #expect(Array(packed[0..<6]) == [1, 3, 5, 7, 9, 11])      // column 0 of rows 0-5
        #expect(Array(packed[12..<18]) == [13, 0, 0, 0, 0, 0])    // column 0 of row 6, then padding
        #expect(Array(packed[18..<24]) == [14, 0, 0, 0, 0, 0])
    }

    /// Threads that share a layer's output rows (`rowRange`, whole panels each) write together exactly what one
    /// product writes: every row once, bias and ReLU included, for parts that split panels unevenly or get none.
    @Test(arguments: [(19, 2), (19, 3), (13, 4), (6, 2), (5, 3), (48, 5)])
    func rowPartsTogetherMatchTheWholeProduct(rows: Int, parts: Int) {
        var rng = SeededValues(seed: UInt64(rows * 10 + parts))
        let (k, n) = (9, 21)
        let a = rng.array(rows * k), b = rng.array(k * n), bias = rng.array(rows)
        let weights = PackedWeights(a, rows: rows, columns: k)
        var whole = [Float](repeating: .nan, count: rows * n), split = whole
        weights.multiply(b, ldb: n, n: n, into: &whole, ldc: n, bias: bias, relu: true)
        var covered = [Int](repeating: 0, count: rows)
        for part in 0..<parts {
            let range = weights.rowRange(part: part, of: parts)
            #expect(range.isEmpty || range.lowerBound % PackedWeights.panelRows == 0)
            for r in range { covered[r] += 1 }
            weights.multiply(rows: range, b, ldb: n, n: n, into: &split, ldc: n, bias: bias, relu: true)
        }
        #expect(covered.allSatisfy { $0 == 1 }, "rows covered \(covered)")
        #expect(split == whole)
    }

    /// The multiply-add peak's chains (`cbam-bench --profile`) on every instruction set: they report 2 operations a
    /// lane, chain and step (4, 8 or 16 lanes), and after n steps chain i holds x = x·0.5 + 1 applied n times to i/16,
    /// 2 − (2 − i/16)·0.5ⁿ, in every lane: each chain started where it should and ran every step.
    @Test(arguments: [1, 2, 5, 64])
    func multiplyAddChainsRunTheStepsTheyReport(steps: Int) {
        let lanes: [cbam_isa: Double] = [CBAM_ISA_PORTABLE: 4, CBAM_ISA_AVX2: 8, CBAM_ISA_AVX512: 16]
        let shrink = (0..<steps).reduce(1.0) { product, _ in product / 2 }
        let perLane = (0..<12).map { (i: Int) -> Double in 2 - (2 - Double(i) / 16) * shrink }.reduce(0, +)
        for isa in Self.instructionSets {
            var sum: Float = 0
            let flops = cbam_fma_chains_isa(isa, steps, &sum)
            let name = String(cString: cbam_isa_name(isa))
            #expect(flops == 2 * Double(steps) * 12 * lanes[isa]!, "\(name): \(flops) operations")
            #expect(abs(Double(sum) - perLane * lanes[isa]!) <= 1e-4, "\(name): chains sum to \(sum)")
        }
    }

    /// The core probe returns, with one rate per thread, from threads that each ran their chains (a thread that
    /// never ran would leave a 0; one that never arrived would keep the others waiting).
    @Test(arguments: [1, 2, 3])
    func coreProbeTimesEveryThread(threads: Int) {
        let rates = measureConcurrentFMA(threads: threads, steps: 200_000)
        #expect(rates.count == threads)
        #expect(rates.allSatisfy { $0 > 0 && $0.isFinite }, "\(rates)")
    }

    /// The round trip returns once both threads have passed the line back and forth (a lost write would hang it),
    /// with a time per trip that is positive and below a millisecond.
    @Test func roundTripCompletesEveryTrip() {
        let nanoseconds = measureRoundTrip(trips: 2_000)
        #expect(nanoseconds > 0 && nanoseconds < 1_000_000, "\(nanoseconds) ns")
    }
}
