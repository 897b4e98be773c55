import Foundation
import Synchronization

/// A few threads of its own for CPU-bound request work (image decoding and preprocessing), so that such work
/// never occupies Swift concurrency's cooperative pool, which has one thread per core and also runs every
/// handler: with decoding there, two slow uploads on two cores would stall `/healthz` and `/metrics` behind them.
/// Jobs run first come, first served; how many wait is bounded by the batching queue's admission (`reserve`).
final class DecodePool: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var head = 0
        var stopping = false
    }

    let threadCount: Int
    private let state = Mutex(State())
    private let available = DispatchSemaphore(value: 0)

    init(threads: Int, name: String = "cbam-decode") {
        threadCount = max(1, threads)
        for index in 0..<threadCount {
            let thread = Thread { [self] in work() }
            thread.name = "\(name)-\(index)"
            thread.start()
        }
    }

    /// Runs `job` on one of the pool's threads and returns its result.
    func run<T: Sendable>(_ job: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            let accepted = state.withLock { s in
                guard !s.stopping else { return false }
                s.jobs.append { continuation.resume(returning: job()) }
                return true
            }
            if accepted { available.signal() } else { continuation.resume(returning: job()) }  // after stop: inline
        }
    }

    /// Lets queued jobs finish, then ends the threads.
    func stop() {
        state.withLock { $0.stopping = true }
        for _ in 0..<threadCount { available.signal() }
    }

    private func work() {
        while true {
            available.wait()
            let job: (@Sendable () -> Void)? = state.withLock { s in
                guard s.head < s.jobs.count else { return nil }
                let job = s.jobs[s.head]
                s.head += 1
                if s.head > 64 && s.head * 2 > s.jobs.count {  // drop the done prefix now and then
                    s.jobs.removeFirst(s.head)
                    s.head = 0
                }
                return job
            }
            guard let job else {
                if state.withLock({ $0.stopping }) { return }
                continue
            }
            job()
        }
    }
}
