import CBAMKernels
import Dispatch
import Foundation
import Synchronization

/// What a part of the forward pass is, for `CBAMModel.profile`.
public enum LayerKind: String, CaseIterable, Sendable {
    case inputLayout = "input layout"
    case stem = "stem"
    case winograd4x4 = "3x3 Winograd F(4x4)"
    case winograd2x2 = "3x3 Winograd F(2x2)"
    case im2col3x3 = "3x3 im2col"
    case strided3x3 = "3x3 stride 2"
    case pointwise = "1x1"
    case stridedPointwise = "1x1 stride 2"
    case cbam = "CBAM"
    case residual = "residual add"
    case pooling = "pooling"
    case classifier = "fc"
}

/// Time and multiply-adds spent in one kind of layer, summed over a profiled pass (means over its iterations).
public struct LayerTime: Sendable {
    public let kind: LayerKind
    public let milliseconds: Double
    /// Of the direct computation (a Winograd convolution is counted as the 3x3 convolution it computes).
    public let multiplyAdds: Int
    /// Effective GFLOP/s: 2 · multiply-adds / time.
    public var gigaflops: Double { milliseconds > 0 ? 2 * Double(multiplyAdds) / (milliseconds * 1e6) : 0 }
}

/// Accumulates the time per layer kind of the passes it is attached to (through their workspace).
final class LayerProfile {
    private(set) var nanoseconds = [LayerKind: UInt64]()
    private(set) var multiplyAdds = [LayerKind: Int]()

    func add(_ kind: LayerKind, nanoseconds ns: UInt64, multiplyAdds macs: Int) {
        nanoseconds[kind, default: 0] += ns
        multiplyAdds[kind, default: 0] += macs
    }
}

extension Workspace {
    /// Runs `body`, adding its time to the profile when one is attached.
    @inline(__always)
    func timed<T>(_ kind: LayerKind, multiplyAdds: Int = 0, _ body: () -> T) -> T {
        guard let profile else { return body() }
        let start = DispatchTime.now().uptimeNanoseconds
        let result = body()
        profile.add(kind, nanoseconds: DispatchTime.now().uptimeNanoseconds - start, multiplyAdds: multiplyAdds)
        return result
    }
}

extension CBAMModel {
    /// Times `iterations` passes of `batch` random images at `height × width` (after one untimed pass), one batch
    /// slice on `BLASThreads.count` threads, and returns the mean time per pass of each kind of layer.
    public func profile(batch: Int, height: Int, width: Int, iterations: Int) -> [LayerTime] {
        _ = BLASThreads.pinOpenBLAS
        var state: UInt64 = 0x2018
        let input = (0..<(batch * 3 * height * width)).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
        }
        let profile = LayerProfile()
        withWorkspaces(1) { workspaces in
            let workspace = workspaces[0]
            input.withUnsafeBufferPointer { x in
                for i in 0...iterations {
                    workspace.profile = i == 0 ? nil : profile
                    _ = run(x.baseAddress!, batch: batch, height: height, width: width, attention: false,
                            threads: BLASThreads.count, in: workspace)
                }
            }
            workspace.profile = nil
        }
        return LayerKind.allCases.compactMap { kind in
            guard let ns = profile.nanoseconds[kind] else { return nil }
            return LayerTime(kind: kind, milliseconds: Double(ns) / 1e6 / Double(iterations),
                             multiplyAdds: profile.multiplyAdds[kind, default: 0] / iterations)
        }
    }
}

/// GFLOP/s of OpenBLAS's sgemm on one thread for `size`³ (the best of `iterations`): a well-known GEMM's practical
/// rate, against which `CBAMModel.profile`'s rates can be read (beside `measureFMAPeak`, the core's own limit).
public func measureSGEMM(size: Int = 1024, iterations: Int = 5) -> Double {
    _ = BLASThreads.pinOpenBLAS
    let a = [Float](repeating: 0.5, count: size * size), b = [Float](repeating: 0.25, count: size * size)
    var c = [Float](repeating: 0, count: size * size)
    var best = UInt64.max
    a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in
            c.withUnsafeMutableBufferPointer { c in
                for _ in 0..<iterations {
                    let start = DispatchTime.now().uptimeNanoseconds
                    gemm(m: size, n: size, k: size, a: a.baseAddress!, lda: size, b: b.baseAddress!, ldb: size,
                         c: c.baseAddress!, ldc: size)
                    best = min(best, DispatchTime.now().uptimeNanoseconds - start)
                }
            }
        }
    }
    return 2 * Double(size * size * size) / Double(best)
}

/// GFLOP/s of each of `threads` threads running `cbam_fma_chains` at the same moment (they start together and run
/// `steps` steps each, about 7 ms at 2 million on a Zen 4 core). Where each virtual CPU is a core of its own, every
/// thread reaches about the one-core peak; where the host has put two of them on one physical core (its two
/// hardware threads, or one core time-sliced), those two reach about half of it. On the 2-vCPU machine of
/// docs/engine-performance.md both threads were at 59 of 117 GFLOP/s in 3 of 25 probes a third of a second apart.
public func measureConcurrentFMA(threads: Int, steps: Int = 2_000_000) -> [Double] {
    precondition(threads >= 1, "measureConcurrentFMA: threads must be at least 1, got \(threads)")
    let rates = Mutex([Double](repeating: 0, count: threads))
    let arrived = Atomic<Int>(0), finished = Atomic<Int>(0)
    let run: @Sendable (Int) -> Void = { index in
        // Every thread waits for the others before its chains, so that they run at one time.
        arrived.wrappingAdd(1, ordering: .acquiringAndReleasing)
        while arrived.load(ordering: .acquiring) < threads {}
        let rate = chainRate(steps: steps)
        rates.withLock { $0[index] = rate }
        finished.wrappingAdd(1, ordering: .releasing)
    }
    for index in 1..<threads { Thread { run(index) }.start() }
    run(0)
    while finished.load(ordering: .acquiring) < threads {}
    return rates.withLock { $0 }
}

/// Nanoseconds of one round trip of a cache line between the calling thread and a second one (each waits for the
/// other's write, `trips` times, timed once both run). Two cores of one Zen 4 CCD answer in 52-95 ns; on the
/// 2-vCPU machine of docs/engine-performance.md the host at times places the two vCPUs on cores about 350 ns apart
/// (separate CCDs, whose L3s are not shared whatever `lscpu` says), and a pass on two threads then pays that for
/// every line one thread writes and the other reads.
public func measureRoundTrip(trips: Int = 100_000) -> Double {
    final class Ball: Sendable { let value = Atomic<Int>(0) }
    let ball = Ball()
    Thread {
        ball.value.store(1, ordering: .releasing)  // running
        for trip in 1...trips {
            while ball.value.load(ordering: .acquiring) != 2 * trip {}
            ball.value.store(2 * trip + 1, ordering: .releasing)
        }
    }.start()
    while ball.value.load(ordering: .acquiring) != 1 {}
    let start = DispatchTime.now().uptimeNanoseconds
    for trip in 1...trips {
        ball.value.store(2 * trip, ordering: .releasing)
        while ball.value.load(ordering: .acquiring) != 2 * trip + 1 {}
    }
    return Double(DispatchTime.now().uptimeNanoseconds - start) / Double(trips)
}

/// GFLOP/s of one core's multiply-adds with the kernels' instruction set, nothing read from memory (the best of
/// `iterations` runs of `cbam_fma_chains`): the physical limit of every convolution's GEMM on one thread.
public func measureFMAPeak(steps: Int = 20_000_000, iterations: Int = 3) -> Double {
    (0..<iterations).map { _ in chainRate(steps: steps) }.max() ?? 0
}

/// GFLOP/s of one run of `steps` steps of `cbam_fma_chains` on the calling thread.
private func chainRate(steps: Int) -> Double {
    var sum: Float = 0
    let start = DispatchTime.now().uptimeNanoseconds
    let flops = cbam_fma_chains(steps, &sum)
    return flops / Double(max(DispatchTime.now().uptimeNanoseconds - start, 1))
}
