import Foundation
import Synchronization

/// Runs one batch of jobs at a time. Owned by the queue's inference thread alone, so it need not be thread-safe
/// (the engine's model is not).
public protocol BatchRunner: AnyObject, SendableMetatype {
    associatedtype Input: Sendable
    associatedtype Output: Sendable
    /// Runs `inputs` as one batch of `imageCount` images and returns one output per input, in the same order.
    func run(_ inputs: [Input], imageCount: Int) throws -> [Output]
}

/// Why a job submitted to a `BatchQueue` produced no output.
public enum BatchQueueError: Error, Equatable, Sendable {
    /// The queue already holds `capacity` images; the caller should retry after `retryAfterSeconds`.
    case queueFull(capacity: Int, retryAfterSeconds: Int)
    /// The job's deadline passed before its result was ready.
    case deadlineExceeded(timeoutMilliseconds: Int)
    /// The caller went away (its task was cancelled) before the result was ready.
    case cancelled
    /// The queue no longer accepts work because the service is shutting down.
    case shuttingDown
    /// A job asked for more images than one batch can ever hold, or for none.
    case invalidImageCount(requested: Int, maximum: Int)
    /// The runner threw or returned the wrong number of outputs.
    case inferenceFailed(message: String)
}

/// What a caller gets back: its own output and how it travelled through the queue.
public struct BatchResult<Output: Sendable>: Sendable {
    public let output: Output
    /// Time from submission until the batch that held the job started running.
    public let queueWait: Duration
    /// Time the runner took for the whole batch.
    public let inferenceTime: Duration
    /// Images in the batch that held the job (its own and its company's).
    public let batchSize: Int
    /// Jobs (requests) in that batch.
    public let batchJobs: Int
}

/// Hooks for metrics; called on the inference thread or the submitting task, so they must be cheap and thread-safe.
public struct BatchQueueObserver: Sendable {
    public var depthChanged: @Sendable (_ queuedImages: Int) -> Void
    public var batchRan: @Sendable (_ images: Int, _ inferenceTime: Duration) -> Void
    public var jobStarted: @Sendable (_ queueWait: Duration) -> Void
    public var jobDropped: @Sendable (_ reason: BatchQueueError) -> Void

    public init(
        depthChanged: @escaping @Sendable (Int) -> Void = { _ in },
        batchRan: @escaping @Sendable (Int, Duration) -> Void = { _, _ in },
        jobStarted: @escaping @Sendable (Duration) -> Void = { _ in },
        jobDropped: @escaping @Sendable (BatchQueueError) -> Void = { _ in }
    ) {
        self.depthChanged = depthChanged
        self.batchRan = batchRan
        self.jobStarted = jobStarted
        self.jobDropped = jobDropped
    }
}

/// Dynamic batching in the manner of Triton and TorchServe: a job waits at most `maxBatchDelay` (counted from
/// the oldest queued job's arrival) for company, until `maxBatchSize` images are queued; then one runner call on a
/// dedicated thread serves the whole batch. Bounded, with per-job deadlines and cancellation.
///
/// A job is never split: batches are formed of whole jobs, up to `maxBatchSize` images.
public final class BatchQueue<Runner: BatchRunner>: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var maxBatchSize: Int
        public var maxBatchDelay: Duration
        /// Most images that may wait in the queue (not counting the batch that is running).
        public var capacity: Int
        /// Deadline of a job that names none.
        public var defaultTimeout: Duration
        /// The `Retry-After` seconds a full queue asks for.
        public var retryAfterSeconds = ServiceConfiguration.default.retryAfterSeconds

        public init(maxBatchSize: Int = ServiceConfiguration.default.maxBatchSize,
                    maxBatchDelay: Duration = ServiceConfiguration.default.maxBatchDelay,
                    capacity: Int = ServiceConfiguration.default.maxQueue,
                    defaultTimeout: Duration = ServiceConfiguration.default.requestTimeout) {
            self.maxBatchSize = max(1, maxBatchSize)
            self.maxBatchDelay = max(.zero, maxBatchDelay)
            self.capacity = max(1, capacity)
            self.defaultTimeout = defaultTimeout
        }
    }

    public typealias Input = Runner.Input
    public typealias Output = Runner.Output
    private typealias Continuation = CheckedContinuation<Result<BatchResult<Output>, BatchQueueError>, Never>

    private struct Job {
        let id: UInt64
        var input: Input?
        let imageCount: Int
        let enqueuedAt: ContinuousClock.Instant
        let timeout: Duration
        let continuation: Continuation
        var running = false
        var deadlineTask: Task<Void, Never>?
    }

    public let configuration: Configuration
    private let observer: BatchQueueObserver
    private let clock = ContinuousClock()
    // Every field below is guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UInt64: Job] = [:]
    private var order: [UInt64] = []          // queued (not running) job ids, oldest first
    private var queuedImages = 0
    private var reservedImages = 0            // admitted by `reserve` and still being prepared
    private var nextID: UInt64 = 0
    private var accepting = true
    private var stopped = false
    private var thread: Thread?
    private let runnerBox: RunnerBox<Runner>

    /// Starts the inference thread, which owns `runner` from now on.
    public init(runner: Runner, configuration: Configuration = .init(), observer: BatchQueueObserver = .init(),
                threadName: String = "cbam-inference") {
        self.configuration = configuration
        self.observer = observer
        self.runnerBox = RunnerBox(runner)
        // The thread holds the queue until `shutdown()` lets it exit.
        let thread = Thread { self.inferenceLoop() }
        thread.name = threadName
        thread.qualityOfService = .userInitiated
        self.thread = thread
        thread.start()
    }

    /// Images waiting in the queue (not counting a running batch).
    public var depth: Int { condition.withLock { queuedImages } }

    /// True once `shutdown()` has begun.
    public var isShuttingDown: Bool { condition.withLock { !accepting } }

    /// True when the queue holds (or has promised room to) as many images as it may.
    public var isSaturated: Bool { condition.withLock { queuedImages + reservedImages >= configuration.capacity } }

    /// Admission before the expensive part: holds room for `imageCount` images while the caller prepares them
    /// (decoding, say), so that a full queue refuses in microseconds instead of after the work. The room is given
    /// back when the reservation is submitted, released, or dropped.
    public func reserve(imageCount: Int) -> Result<Reservation, BatchQueueError> {
        guard imageCount >= 1, imageCount <= configuration.maxBatchSize else {
            return .failure(.invalidImageCount(requested: imageCount, maximum: configuration.maxBatchSize))
        }
        let rejection: BatchQueueError? = condition.withLock {
            if !accepting { return .shuttingDown }
            if queuedImages + reservedImages + imageCount > configuration.capacity {
                return .queueFull(capacity: configuration.capacity, retryAfterSeconds: configuration.retryAfterSeconds)
            }
            reservedImages += imageCount
            return nil
        }
        if let rejection {
            observer.jobDropped(rejection)
            return .failure(rejection)
        }
        return .success(Reservation(imageCount: imageCount) { [weak self] in self?.unreserve(imageCount) })
    }

    private func unreserve(_ imageCount: Int) {
        condition.withLock { reservedImages -= imageCount }
    }

    /// `submit` into room held by `reservation` (which it uses up): no capacity check, the room is already held.
    public func submit(_ input: Input, reservation: Reservation, timeout: Duration? = nil)
        async -> Result<BatchResult<Output>, BatchQueueError>
    {
        guard reservation.take() else {
            return .failure(.inferenceFailed(message: "a queue reservation was submitted twice or after its release"))
        }
        return await submit(input, imageCount: reservation.imageCount, timeout: timeout, reserved: true)
    }

    /// Enqueues one job of `imageCount` images and waits for its output. Cancelling the calling task drops the job.
    public func submit(_ input: Input, imageCount: Int = 1, timeout: Duration? = nil)
        async -> Result<BatchResult<Output>, BatchQueueError>
    {
        await submit(input, imageCount: imageCount, timeout: timeout, reserved: false)
    }

    private func submit(_ input: Input, imageCount: Int, timeout: Duration?, reserved: Bool)
        async -> Result<BatchResult<Output>, BatchQueueError>
    {
        guard imageCount >= 1, imageCount <= configuration.maxBatchSize else {
            return .failure(.invalidImageCount(requested: imageCount, maximum: configuration.maxBatchSize))
        }
        let timeout = timeout ?? configuration.defaultTimeout
        let id = condition.withLock { () -> UInt64 in nextID &+= 1; return nextID }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: Continuation) in
                enqueue(Job(id: id, input: input, imageCount: imageCount, enqueuedAt: clock.now, timeout: timeout,
                            continuation: continuation), reserved: reserved)
            }
        } onCancel: {
            finish(id, with: .cancelled)
        }
    }

    /// Stops accepting jobs, lets queued ones run, and returns when the inference thread has exited.
    public func shutdown() async {
        condition.withLock {
            accepting = false
            condition.broadcast()
        }
        while !condition.withLock({ stopped }) {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    // MARK: - Submitting side

    /// `reserved`: the room was held by a reservation, so only cancellation and shutdown refuse the job.
    private func enqueue(_ job: Job, reserved: Bool) {
        let rejection: BatchQueueError? = condition.withLock {
            if reserved { reservedImages -= job.imageCount }  // from here on the job holds its room, or is refused
            if Task.isCancelled { return .cancelled }   // cancelled before the handler could find the job
            if !accepting { return .shuttingDown }
            if !reserved && queuedImages + reservedImages + job.imageCount > configuration.capacity {
                return .queueFull(capacity: configuration.capacity, retryAfterSeconds: configuration.retryAfterSeconds)
            }
            jobs[job.id] = job
            order.append(job.id)
            queuedImages += job.imageCount
            condition.signal()
            return nil
        }
        if let rejection {
            observer.jobDropped(rejection)
            job.continuation.resume(returning: .failure(rejection))
            return
        }
        observer.depthChanged(depth)
        let id = job.id, timeout = job.timeout
        let deadline = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self?.finish(id, with: .deadlineExceeded(timeoutMilliseconds: timeout.milliseconds)) }
        }
        let stillWaiting = condition.withLock { () -> Bool in
            guard jobs[id] != nil else { return false }
            jobs[id]!.deadlineTask = deadline
            return true
        }
        if !stillWaiting { deadline.cancel() }
    }

    /// Resolves a job with `error` unless it already has a result; a queued job leaves the queue.
    private func finish(_ id: UInt64, with error: BatchQueueError) {
        let job: Job? = condition.withLock {
            guard let job = jobs.removeValue(forKey: id) else { return nil }
            if !job.running, let index = order.firstIndex(of: id) {
                order.remove(at: index)
                queuedImages -= job.imageCount
            }
            return job
        }
        guard let job else { return }
        job.deadlineTask?.cancel()
        if !job.running { observer.depthChanged(depth) }
        observer.jobDropped(error)
        job.continuation.resume(returning: .failure(error))
    }

    // MARK: - Inference thread

    private func inferenceLoop() {
        while let batch = nextBatch() {
            run(batch)
        }
        condition.withLock { stopped = true }
    }

    /// Waits for a batch: at least one job, then company until the oldest job has waited `maxBatchDelay` or the
    /// batch is full. Returns nil once shut down and drained.
    private func nextBatch() -> [Job]? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            guard let oldestID = order.first, let oldest = jobs[oldestID] else {
                if !accepting { return nil }
                condition.wait()
                continue
            }
            let fireAt = oldest.enqueuedAt + configuration.maxBatchDelay
            if queuedImages < configuration.maxBatchSize && accepting && clock.now < fireAt {
                let remaining = clock.now.duration(to: fireAt)
                _ = condition.wait(until: Date(timeIntervalSinceNow: remaining.seconds))
                continue    // jobs may have arrived, been cancelled, or timed out meanwhile
            }
            var batch: [Job] = []
            var images = 0
            while let id = order.first, var job = jobs[id], images + job.imageCount <= configuration.maxBatchSize {
                order.removeFirst()
                queuedImages -= job.imageCount
                images += job.imageCount
                job.running = true
                jobs[id] = job
                batch.append(job)
            }
            return batch
        }
    }

    private func run(_ batch: [Job]) {
        observer.depthChanged(depth)
        let started = clock.now
        for job in batch { observer.jobStarted(job.enqueuedAt.duration(to: started)) }
        let images = batch.reduce(0) { $0 + $1.imageCount }
        let outcome: Result<[Output], BatchQueueError>
        do {
            let outputs = try runnerBox.runner.run(batch.map { $0.input! }, imageCount: images)
            outcome = outputs.count == batch.count
                ? .success(outputs)
                : .failure(.inferenceFailed(message: "the runner returned \(outputs.count) outputs for \(batch.count) jobs"))
        } catch {
            outcome = .failure(.inferenceFailed(message: "inference failed: \(error)"))
        }
        let inferenceTime = started.duration(to: clock.now)
        observer.batchRan(images, inferenceTime)
        // Take back the jobs still waiting for an answer; the others timed out or were cancelled meanwhile.
        let waiting: [Job?] = condition.withLock { batch.map { jobs.removeValue(forKey: $0.id) } }
        for (index, job) in batch.enumerated() {
            guard let waiter = waiting[index] else { continue }
            waiter.deadlineTask?.cancel()
            switch outcome {
            case .success(let outputs):
                waiter.continuation.resume(returning: .success(BatchResult(
                    output: outputs[index], queueWait: job.enqueuedAt.duration(to: started),
                    inferenceTime: inferenceTime, batchSize: images, batchJobs: batch.count)))
            case .failure(let error):
                observer.jobDropped(error)
                waiter.continuation.resume(returning: .failure(error))
            }
        }
    }
}

/// Room held in a `BatchQueue` for images being prepared. Used up by `submit(_:reservation:)`; given back by
/// `release()` or when the last reference goes (a request that failed while decoding holds nothing).
public final class Reservation: Sendable {
    public let imageCount: Int
    private let giveBack: @Sendable () -> Void
    private let held = Atomic<Bool>(true)

    init(imageCount: Int, giveBack: @escaping @Sendable () -> Void) {
        self.imageCount = imageCount
        self.giveBack = giveBack
    }

    /// Gives the room back (once; later calls do nothing).
    public func release() { if take() { giveBack() } }

    /// True the first time: the caller now owns the room.
    func take() -> Bool { held.exchange(false, ordering: .acquiringAndReleasing) }

    deinit { release() }
}

/// Hands the runner to the inference thread; only that thread touches it after `init`.
private final class RunnerBox<Runner>: @unchecked Sendable {
    let runner: Runner
    init(_ runner: Runner) { self.runner = runner }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    var milliseconds: Int {
        let (seconds, attoseconds) = components
        return Int(seconds) * 1000 + Int(attoseconds / 1_000_000_000_000_000)
    }

    /// Seconds as a floating-point number.
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) * 1e-18
    }
}
