import COpenBLAS
import Foundation
import Synchronization

/// The number of threads a forward pass uses. The engine splits the work itself (the batch into slices, or a layer
/// into blocks), so OpenBLAS is pinned to one thread, once, and every GEMM runs on the thread that calls it:
/// `set(1)` means one busy core. (The name is kept from when this set OpenBLAS's own thread count.)
public enum BLASThreads {
    private static let requested = Atomic<Int>(0)
    /// OpenBLAS runs every GEMM on its caller: set once, before the engine's first GEMM. The pthreads build
    /// started its pool when it was loaded, and those threads spin for a while before they sleep; a one-thread pass
    /// would pay for a second busy core, so the pool is shut down too (where this OpenBLAS build has one).
    static let pinOpenBLAS: Void = {
        openblas_set_num_threads(1)
        if let handle = dlopen(nil, RTLD_NOW), let shutdown = dlsym(handle, "blas_thread_shutdown_") {
            _ = unsafeBitCast(shutdown, to: (@convention(c) () -> Int32).self)()
        }
    }()

    public static func set(_ count: Int) {
        _ = pinOpenBLAS
        requested.store(max(1, count), ordering: .relaxed)
    }

    /// The count last `set`, else the cores this process may keep busy (affinity and cgroup quota).
    public static var count: Int {
        let n = requested.load(ordering: .relaxed)
        return n > 0 ? n : AvailableCores.count
    }
}

/// Runs `body(index, thread)` for `index` in `0..<count` on up to `threads` threads (`thread` in `0..<threads`
/// names the caller's buffer), on the engine's `WorkerPool`: each thread takes the next index when it is free.
func parallelFor(_ count: Int, threads: Int, _ body: (_ index: Int, _ thread: Int) -> Void) {
    WorkerPool.shared.run(count, threads: threads, body)
}

/// Runs `body` on `0..<count` cut into one contiguous range per thread (as many as `threads`, at most `count`).
func parallelRanges(_ count: Int, threads: Int, _ body: (Range<Int>) -> Void) {
    let parts = max(1, min(threads, count))
    parallelFor(parts, threads: parts) { part, _ in body(part * count / parts..<(part + 1) * count / parts) }
}

/// Rows per part when `rows` are cut into parts of at most `most` rows for `threads` threads (column tiles,
/// Winograd blocks). One thread takes the largest parts; several take parts of one size, as many as a multiple of
/// the threads, so that none waits on another's short last part (ResNet-50's 56 rows at most 18 a tile were 18, 18,
/// 18 and 2 rows: 36 rows for one of two threads and 20 for the other).
func rowsPerPart(_ rows: Int, atMost most: Int, threads: Int) -> Int {
    let most = max(1, min(rows, most))
    guard threads > 1 else { return most }
    let parts = ((rows + most - 1) / most + threads - 1) / threads * threads
    return max(1, (rows + parts - 1) / parts)
}
