import Dispatch
import Foundation
import Synchronization

/// The engine's own threads for splitting one pass's layers, a fork-join pool as in ONNX Runtime and ggml: the caller
/// publishes a job of `count` indices, the workers and the caller take indices as they free up, and the caller returns
/// when the last one is done. After a job a worker spins for about 100 µs before it sleeps, so that the next layer's
/// job, a few microseconds later, starts at once: `DispatchQueue.concurrentPerform` woke its threads for every layer.
/// While a pass is under way (`duringPass`) a worker does not sleep at all.
final class WorkerPool: Sendable {
    static let shared = WorkerPool()

    /// One `run` call. Workers that see it late find every index taken and never touch `body`.
    private final class Job: Sendable {
        let count: Int
        let threads: Int
        let next = Atomic<Int>(0)
        let done = Atomic<Int>(0)
        /// Set before the job is published and cleared once its last index is done; only a thread that has taken an
        /// index below `count` reads it, and all of those have finished before it is cleared.
        nonisolated(unsafe) var body: ((_ index: Int, _ thread: Int) -> Void)?

        init(count: Int, threads: Int, body: @escaping (Int, Int) -> Void) {
            (self.count, self.threads, self.body) = (count, threads, body)
        }

        /// Takes indices until none are left; `thread` names the caller's buffer.
        func work(as thread: Int) {
            while true {
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < count else { return }
                body!(index, thread)
                done.wrappingAdd(1, ordering: .releasing)
            }
        }
    }

    private let current = Mutex<Job?>(nil)
    private let generation = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private let wake = DispatchSemaphore(value: 0)
    private let started = Mutex<Int>(0)
    /// One job at a time: a pass that finds the pool busy (another model's, or another request's) runs alone.
    private let busy = Atomic<Bool>(false)

    /// Spins of a worker without a job before it sleeps (an atomic load each, about 100 µs in all).
    private static let spinsBeforeSleep = 100_000
    /// Passes under way that split their layers over the pool: while there is one, a worker between jobs keeps
    /// spinning. Within a pass the gaps between jobs can outlast the spins (at batch 1 on two threads the attention of
    /// a ResNet-50 block runs on the calling thread for 0.1-0.3 ms), and a worker asleep there was woken by the next
    /// layer (a futex and an interrupt to a halted vCPU). Between passes it still sleeps after its 100 µs. ResNet-50,
    /// batch 1, two threads, runs in turn classified by a cache line's round trip: 36.66 → 36.28 ms on close cores,
    /// 44.96 → 44.55 far apart (spinning 2 ms after every job instead: 36.21 and 44.38, but a core busy after each pass).
    private let passes = Atomic<Int>(0)

    /// Runs `body`, a forward pass that splits its layers over the pool, with the workers kept awake throughout.
    func duringPass<T>(_ body: () -> T) -> T {
        passes.wrappingAdd(1, ordering: .relaxed)
        defer { passes.wrappingSubtract(1, ordering: .relaxed) }
        return body()
    }

    /// Runs `body(index, thread)` for every index in `0..<count`, on the caller (thread 0) and up to `threads − 1`
    /// workers (threads 1...); a thread runs one index at a time, so `thread` may name a buffer of its own.
    func run(_ count: Int, threads: Int, _ body: (_ index: Int, _ thread: Int) -> Void) {
        let threads = min(threads, count)
        guard threads > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for index in 0..<count { body(index, 0) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        startWorkers(threads - 1)
        withoutActuallyEscaping(body) { body in
            let job = Job(count: count, threads: threads, body: body)
            current.withLock { $0 = job }
            generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
            let asleep = sleepers.exchange(0, ordering: .sequentiallyConsistent)
            for _ in 0..<asleep { wake.signal() }
            job.work(as: 0)
            while job.done.load(ordering: .acquiring) < count {}
            job.body = nil
            current.withLock { $0 = nil }
        }
    }

    private func startWorkers(_ count: Int) {
        started.withLock { running in
            while running < count {
                let thread = running + 1
                Thread { [self] in work(as: thread) }.start()
                running += 1
            }
        }
    }

    /// A worker's life: wait for a new generation (spinning, then asleep), help with its job, again.
    private func work(as thread: Int) {
        var seen = generation.load(ordering: .acquiring)
        while true {
            var spins = 0
            while generation.load(ordering: .acquiring) == seen {
                spins += 1
                guard spins >= Self.spinsBeforeSleep, passes.load(ordering: .relaxed) == 0 else { continue }
                // Counted as asleep before the last look, so a job published after it is sure to signal.
                sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
                if generation.load(ordering: .sequentiallyConsistent) == seen { wake.wait() }
                spins = 0
            }
            seen = generation.load(ordering: .acquiring)
            if let job = current.withLock({ $0 }), thread < job.threads { job.work(as: thread) }
        }
    }
}
