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
/// `depthChanged` is called under the queue's lock, so that its values arrive in the order they happened.
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

/// Dynamic batching that needs no tuning. A job that finds the engine idle and nothing else on the way runs at
/// once: concurrency 1 pays no batching delay. While a batch runs, arrivals accumulate, and the next batch takes
/// every queued job up to `maxBatchSize` images. The only waiting is for company known to be coming: images admitted
/// by `reserve` and still being decoded, and the clients of the batch that just ended, who (in the closed loop of
/// a benchmark or a pipeline) send their next request at once; without that, eight clients split into two
/// alternating half-batches. A job waits for them at most `maxBatchDelay` past the moment the engine could have
/// taken it. One runner call on a dedicated thread serves each batch. Bounded, with per-job deadlines and
/// cancellation.
///
/// A job is never split: batches are formed of whole jobs, up to `maxBatchSize` images.
public final class BatchQueue<Runner: BatchRunner>: Sendable {
    public struct Configuration: Sendable {
        public var maxBatchSize: Int
        /// The longest a queued job waits for company known to be coming (images admitted and still being
        /// prepared, the last batch's clients), counted from when the engine could first have taken it: an upper
        /// bound, not a target; a job with nothing on the way never waits.
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

    private struct Job: Sendable {
        let id: UInt64
        var input: Input?
        let imageCount: Int
        let enqueuedAt: ContinuousClock.Instant
        let timeout: Duration
        let continuation: Continuation
        var running = false
        var deadlineTask: Task<Void, Never>?
    }

    private struct State: Sendable {
        var jobs: [UInt64: Job] = [:]
        var order: [UInt64] = []          // queued (not running) job ids, oldest first
        var queuedImages = 0
        var reservedImages = 0            // admitted by `reserve` and still being prepared
        var nextID: UInt64 = 0
        var accepting = true
        var stopped = false
        var shutdownWaiters: [CheckedContinuation<Void, Never>] = []
        /// When the last batch ended, how many jobs it held, and how many jobs have arrived (been reserved or
        /// submitted) since: the last batch's clients not yet back are expected soon.
        var lastBatchEnded: ContinuousClock.Instant?
        var lastBatchJobs = 0
        var arrivalsSinceLastBatch = 0
    }

    /// What the inference thread does next.
    private enum Step {
        case run([Job])
        case sleep(until: ContinuousClock.Instant?)
        case stop
    }

    public let configuration: Configuration
    private let observer: BatchQueueObserver
    private let clock = ContinuousClock()
    private let state = Mutex(State())
    /// Wakes the inference thread after anything that may change its next step (an arrival, a released
    /// reservation, shutdown). Extra signals only cost a look at the state.
    private let wakeUp = DispatchSemaphore(value: 0)
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
        thread.start()
    }

    /// Images waiting in the queue (not counting a running batch).
    public var depth: Int { state.withLock { $0.queuedImages } }

    /// True once `shutdown()` has begun.
    public var isShuttingDown: Bool { state.withLock { !$0.accepting } }

    /// True when the queue holds (or has promised room to) as many images as it may.
    public var isSaturated: Bool {
        state.withLock { $0.queuedImages + $0.reservedImages >= configuration.capacity }
    }

    /// Admission before the expensive part: holds room for `imageCount` images while the caller prepares them
    /// (decoding, say), so that a full queue refuses in microseconds instead of after the work. The room is given
    /// back when the reservation is submitted, released, or dropped. Queued jobs wait (up to `maxBatchDelay`) for
    /// reserved images, so that they share a batch.
    public func reserve(imageCount: Int) -> Result<Reservation, BatchQueueError> {
        guard imageCount >= 1, imageCount <= configuration.maxBatchSize else {
            return .failure(.invalidImageCount(requested: imageCount, maximum: configuration.maxBatchSize))
        }
        let rejection: BatchQueueError? = state.withLock { state in
            if !state.accepting { return .shuttingDown }
            if state.queuedImages + state.reservedImages + imageCount > configuration.capacity {
                return .queueFull(capacity: configuration.capacity, retryAfterSeconds: configuration.retryAfterSeconds)
            }
            state.reservedImages += imageCount
            state.arrivalsSinceLastBatch += 1
            return nil
        }
        if let rejection {
            observer.jobDropped(rejection)
            return .failure(rejection)
        }
        return .success(Reservation(imageCount: imageCount) { [weak self] in self?.unreserve(imageCount) })
    }

    private func unreserve(_ imageCount: Int) {
        state.withLock { $0.reservedImages -= imageCount }
        wakeUp.signal()     // a queued job may have been waiting for these images
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
        let id = state.withLock { state -> UInt64 in state.nextID &+= 1; return state.nextID }
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
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let stopped = state.withLock { state -> Bool in
                state.accepting = false
                if !state.stopped { state.shutdownWaiters.append(continuation) }
                return state.stopped
            }
            if stopped { continuation.resume() }
            wakeUp.signal()
        }
    }

    // MARK: - Submitting side

    /// `reserved`: the room was held by a reservation, so only cancellation and shutdown refuse the job.
    private func enqueue(_ job: Job, reserved: Bool) {
        let rejection: BatchQueueError? = state.withLock { state in
            if reserved { state.reservedImages -= job.imageCount }  // from here on the job holds its room, or is refused
            if Task.isCancelled { return .cancelled }   // cancelled before the handler could find the job
            if !state.accepting { return .shuttingDown }
            if !reserved && state.queuedImages + state.reservedImages + job.imageCount > configuration.capacity {
                return .queueFull(capacity: configuration.capacity, retryAfterSeconds: configuration.retryAfterSeconds)
            }
            state.jobs[job.id] = job
            state.order.append(job.id)
            state.queuedImages += job.imageCount
            if !reserved { state.arrivalsSinceLastBatch += 1 }
            observer.depthChanged(state.queuedImages)
            return nil
        }
        wakeUp.signal()
        if let rejection {
            observer.jobDropped(rejection)
            job.continuation.resume(returning: .failure(rejection))
            return
        }
        let id = job.id, timeout = job.timeout
        let deadline = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            if !Task.isCancelled { self?.finish(id, with: .deadlineExceeded(timeoutMilliseconds: timeout.milliseconds)) }
        }
        let stillWaiting = state.withLock { state -> Bool in
            guard state.jobs[id] != nil else { return false }
            state.jobs[id]!.deadlineTask = deadline
            return true
        }
        if !stillWaiting { deadline.cancel() }
    }

    /// Resolves a job with `error` unless it already has a result; a queued job leaves the queue.
    private func finish(_ id: UInt64, with error: BatchQueueError) {
        let job: Job? = state.withLock { state in
            guard let job = state.jobs.removeValue(forKey: id) else { return nil }
            if !job.running, let index = state.order.firstIndex(of: id) {
                state.order.remove(at: index)
                state.queuedImages -= job.imageCount
                observer.depthChanged(state.queuedImages)
            }
            return job
        }
        guard let job else { return }
        job.deadlineTask?.cancel()
        observer.jobDropped(error)
        job.continuation.resume(returning: .failure(error))
    }

    // MARK: - Inference thread

    private func inferenceLoop() {
        while let batch = nextBatch() {
            run(batch)
        }
        let waiters = state.withLock { state in
            state.stopped = true
            defer { state.shutdownWaiters = [] }
            return state.shutdownWaiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Waits for a batch and returns it; nil once shut down and drained.
    private func nextBatch() -> [Job]? {
        while true {
            switch state.withLock({ nextStep(&$0) }) {
            case .run(let batch):
                return batch
            case .stop:
                return nil
            case .sleep(until: nil):
                wakeUp.wait()
            case .sleep(until: let instant?):
                let nanoseconds = clock.now.duration(to: instant).nanoseconds
                _ = wakeUp.wait(timeout: .now() + .nanoseconds(Int(max(0, nanoseconds))))
            }
        }
    }

    /// The batch to run now, or how long to sleep first. Queued jobs wait only for company known to be coming
    /// (images admitted and being prepared, and, within `maxBatchDelay` of its end, the last batch's clients not yet
    /// back, counted as one image each),
    /// up to a full batch, and at most `maxBatchDelay` past the later of the oldest job's arrival and the end of
    /// the last batch (when the engine could first have taken it).
    private func nextStep(_ state: inout State) -> Step {
        guard let oldestID = state.order.first, let oldest = state.jobs[oldestID] else {
            return state.accepting ? .sleep(until: nil) : .stop
        }
        // Expected back only soon after their batch: a job that comes after a pause does not wait for them.
        let recent = state.lastBatchEnded.map { clock.now < $0 + configuration.maxBatchDelay } ?? false
        let returning = recent ? max(0, state.lastBatchJobs - state.arrivalsSinceLastBatch) : 0
        let coming = min(state.queuedImages + state.reservedImages + returning, configuration.maxBatchSize)
        let engineFree = max(oldest.enqueuedAt, state.lastBatchEnded ?? oldest.enqueuedAt)
        let fireAt = engineFree + configuration.maxBatchDelay
        if state.queuedImages < coming && state.accepting && clock.now < fireAt {
            return .sleep(until: fireAt)
        }
        var batch: [Job] = []
        var images = 0
        while let id = state.order.first, var job = state.jobs[id],
              images + job.imageCount <= configuration.maxBatchSize {
            state.order.removeFirst()
            state.queuedImages -= job.imageCount
            images += job.imageCount
            job.running = true
            state.jobs[id] = job
            batch.append(job)
        }
        observer.depthChanged(state.queuedImages)
        return .run(batch)
    }

    private func run(_ batch: [Job]) {
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
        // Take back the jobs still waiting for an answer; the others timed out or were cancelled meanwhile. From
        // now on their clients may come back with their next requests.
        let waiting: [Job?] = state.withLock { state in
            state.lastBatchEnded = clock.now
            state.lastBatchJobs = batch.count
            state.arrivalsSinceLastBatch = 0
            return batch.map { state.jobs.removeValue(forKey: $0.id) }
        }
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

/// Hands the runner to the inference thread. Unchecked because the runner is not thread-safe and need not be: only
/// that thread touches it after `init`.
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
