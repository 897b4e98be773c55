import Foundation
import Testing
@testable import CBAMService

/// A runner that doubles its inputs, records every batch, and can be held at a gate to pile work up.
final class DoublingRunner: BatchRunner, @unchecked Sendable {
    typealias Input = Int
    typealias Output = Int

    private let lock = NSLock()
    private var batches: [[Int]] = []
    private var imageCounts: [Int] = []
    private let gate = DispatchSemaphore(value: 0)
    private let started = DispatchSemaphore(value: 0)
    let gated: Bool
    let work: Duration
    private var failing = false

    init(gated: Bool = false, work: Duration = .zero) {
        self.gated = gated
        self.work = work
    }

    func run(_ inputs: [Int], imageCount: Int) throws -> [Int] {
        lock.withLock {
            batches.append(inputs)
            imageCounts.append(imageCount)
        }
        started.signal()
        if gated { gate.wait() }
        if work > .zero { Thread.sleep(forTimeInterval: work.seconds) }
        if lock.withLock({ failing }) { throw RunnerFailure() }
        return inputs.map { $0 * 2 }
    }

    /// Lets one held batch finish.
    func release() { gate.signal() }
    /// Waits until a batch has started running.
    func waitUntilRunning() async {
        while started.wait(timeout: .now()) == .timedOut { try? await Task.sleep(for: .milliseconds(1)) }
    }
    var recordedBatches: [[Int]] { lock.withLock { batches } }
    var recordedImageCounts: [Int] { lock.withLock { imageCounts } }
    func setFailing() { lock.withLock { failing = true } }
}

struct RunnerFailure: Error, CustomStringConvertible { var description: String { "the fake engine broke" } }

@Suite struct BatchQueueTests {
    @Test func aLoneJobRunsAtOnceWhateverTheDelay() async throws {
        let runner = DoublingRunner()
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 8, maxBatchDelay: .seconds(30)))
        let result = try await queue.submit(21).get()
        #expect(result.output == 42)
        #expect(result.batchSize == 1)
        #expect(result.batchJobs == 1)
        // Nothing else is queued or on the way, so it does not wait out the 30 s delay.
        #expect(result.queueWait < .seconds(1))
        await queue.shutdown()
    }

    @Test func aJobWaitsForImagesBeingPreparedThenRunsWithThem() async throws {
        let runner = DoublingRunner()
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 4, maxBatchDelay: .seconds(30)))
        let reservations = try (0..<4).map { _ in try queue.reserve(imageCount: 1).get() }
        let clock = ContinuousClock()
        let start = clock.now
        // Three jobs arrive and wait for the fourth, which is still being "decoded".
        let early = (0..<3).map { value in Task { await queue.submit(value, reservation: reservations[value]) } }
        while queue.depth < 3 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(runner.recordedBatches.isEmpty)
        let last = try await queue.submit(3, reservation: reservations[3]).get()
        #expect(last.batchSize == 4)
        for (value, task) in early.enumerated() { #expect(try await task.value.get().output == value * 2) }
        #expect(runner.recordedBatches.map { $0.sorted() } == [[0, 1, 2, 3]])
        #expect(start.duration(to: clock.now) < .seconds(10))
        await queue.shutdown()
    }

    @Test func aReleasedReservationStopsTheWait() async throws {
        let runner = DoublingRunner()
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 4, maxBatchDelay: .seconds(30)))
        let mine = try queue.reserve(imageCount: 1).get()
        let abandoned = try queue.reserve(imageCount: 2).get()
        let job = Task { await queue.submit(7, reservation: mine) }
        while queue.depth < 1 { try await Task.sleep(for: .milliseconds(1)) }
        // The other request failed to decode: its images will never come, so the job runs alone.
        abandoned.release()
        let result = try await job.value.get()
        #expect(result.output == 14)
        #expect(result.batchSize == 1)
        #expect(result.queueWait < .seconds(10))
        await queue.shutdown()
    }

    @Test func aWaitForPreparedImagesIsBoundedByTheDelay() async throws {
        let runner = DoublingRunner()
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 4, maxBatchDelay: .milliseconds(30)))
        let slow = try queue.reserve(imageCount: 1).get()
        let result = try await queue.submit(1).get()
        #expect(result.batchSize == 1)
        #expect(result.queueWait >= .milliseconds(25))
        #expect(result.queueWait < .seconds(5))
        slow.release()
        await queue.shutdown()
    }

    @Test func aFullBatchRunsWithoutWaitingForTheDelay() async throws {
        let runner = DoublingRunner()
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 4, maxBatchDelay: .seconds(30)))
        // More images on the way than a batch holds: the first full batch goes without waiting for the rest.
        let reservations = try (0..<6).map { _ in try queue.reserve(imageCount: 1).get() }
        let clock = ContinuousClock()
        let start = clock.now
        let outputs = await withTaskGroup(of: Int?.self) { group in
            for value in 0..<4 {
                group.addTask { try? await queue.submit(value, reservation: reservations[value]).get().output }
            }
            return await group.reduce(into: [Int]()) { if let v = $1 { $0.append(v) } }
        }
        #expect(outputs.sorted() == [0, 2, 4, 6])
        #expect(start.duration(to: clock.now) < .seconds(5))
        #expect(runner.recordedBatches.map(\.count) == [4])
        await queue.shutdown()
    }

    @Test func arrivalsDuringABatchShareTheNextOne() async throws {
        let runner = DoublingRunner(gated: true)
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 8, maxBatchDelay: .zero))
        let first = Task { await queue.submit(1) }
        await runner.waitUntilRunning()
        let piled = (2...6).map { value in Task { await queue.submit(value) } }
        while queue.depth < 5 { try await Task.sleep(for: .milliseconds(1)) }
        runner.release()
        runner.release()
        _ = await first.value
        for task in piled { _ = await task.value }
        #expect(runner.recordedBatches.map { $0.sorted() } == [[1], [2, 3, 4, 5, 6]])
        await queue.shutdown()
    }

    @Test func everyCallerGetsItsOwnResultUnderConcurrency() async throws {
        let runner = DoublingRunner(work: .milliseconds(3))
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 8, maxBatchDelay: .milliseconds(2)))
        let pairs = await withTaskGroup(of: (Int, Int?, Int).self) { group in
            for value in 0..<200 {
                group.addTask {
                    let result = try? await queue.submit(value * 7 + 1).get()
                    return (value * 7 + 1, result?.output, result?.batchSize ?? 0)
                }
            }
            return await group.reduce(into: [(Int, Int?, Int)]()) { $0.append($1) }
        }
        #expect(pairs.count == 200)
        for (input, output, _) in pairs { #expect(output == input * 2) }
        let sizes = runner.recordedBatches.map(\.count)
        #expect(sizes.reduce(0, +) == 200)
        #expect(sizes.allSatisfy { $0 <= 8 })
        #expect(sizes.contains { $0 > 1 }, "200 concurrent callers should share batches")
        #expect(pairs.contains { $0.2 > 1 })
        await queue.shutdown()
    }

    @Test func multiImageJobsAreNeverSplitAndBatchesStayWithinTheLimit() async throws {
        let runner = DoublingRunner(work: .milliseconds(2))
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 8, maxBatchDelay: .milliseconds(5)))
        await withTaskGroup(of: Void.self) { group in
            for value in 0..<30 {
                group.addTask {
                    let result = try? await queue.submit(value, imageCount: 3).get()
                    #expect(result?.output == value * 2)
                    #expect(result.map { $0.batchSize % 3 == 0 && $0.batchSize <= 6 } == true)
                }
            }
        }
        #expect(runner.recordedImageCounts.allSatisfy { $0 == 3 || $0 == 6 })
        #expect(runner.recordedImageCounts.reduce(0, +) == 90)
        let tooBig = await queue.submit(1, imageCount: 9)
        #expect(tooBig.failure == .invalidImageCount(requested: 9, maximum: 8))
        await queue.shutdown()
    }

    @Test func theLastBatchsClientsAreAwaitedAndJoinTheNextBatch() async throws {
        let runner = DoublingRunner(gated: true)
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 8, maxBatchDelay: .seconds(30)))
        let reservations = try (0..<2).map { _ in try queue.reserve(imageCount: 1).get() }
        let first = (0..<2).map { value in Task { await queue.submit(value, reservation: reservations[value]) } }
        await runner.waitUntilRunning()
        let during = Task { await queue.submit(10) }         // arrives while the first batch runs
        while queue.depth < 1 { try await Task.sleep(for: .milliseconds(1)) }
        runner.release()
        for task in first { _ = await task.value }
        // The first batch's two clients are expected back: the waiting job does not run alone meanwhile.
        try await Task.sleep(for: .milliseconds(50))
        #expect(runner.recordedBatches.count == 1)
        let back = (20..<22).map { value in Task { await queue.submit(value) } }
        runner.release()
        #expect(try await during.value.get().batchSize == 3)
        for task in back { _ = await task.value }
        #expect(runner.recordedBatches.map { $0.sorted() } == [[0, 1], [10, 20, 21]])
        await queue.shutdown()
    }

    @Test func clientsThatDoNotComeBackAreAwaitedNoLongerThanTheDelay() async throws {
        let runner = DoublingRunner(gated: true)
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 8, maxBatchDelay: .milliseconds(40)))
        let first = Task { await queue.submit(1) }
        await runner.waitUntilRunning()
        let during = Task { await queue.submit(2) }
        while queue.depth < 1 { try await Task.sleep(for: .milliseconds(1)) }
        runner.release()
        runner.release()
        _ = await first.value
        let clock = ContinuousClock()
        let start = clock.now
        #expect(try await during.value.get().batchSize == 1)
        // It waited for the first batch's client (most of the 40 ms), then ran alone.
        #expect(start.duration(to: clock.now) >= .milliseconds(20))
        #expect(start.duration(to: clock.now) < .seconds(5))
        #expect(runner.recordedBatches == [[1], [2]])
        await queue.shutdown()
    }

    @Test func aJobAfterAPauseDoesNotWaitForTheLastBatchsClients() async throws {
        let runner = DoublingRunner()
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 8, maxBatchDelay: .milliseconds(300)))
        let reservations = try (0..<3).map { _ in try queue.reserve(imageCount: 1).get() }
        let first = (0..<3).map { value in Task { await queue.submit(value, reservation: reservations[value]) } }
        for task in first { _ = await task.value }
        try await Task.sleep(for: .milliseconds(400))   // longer than the delay: those clients are not coming back
        let later = try await queue.submit(7).get()
        #expect(later.batchSize == 1)
        #expect(later.queueWait < .milliseconds(150), "waited \(later.queueWait) for clients long gone")
        await queue.shutdown()
    }

    @Test func aFullQueueCountsReservedRoom() async throws {
        let queue = BatchQueue(runner: DoublingRunner(), configuration: .init(maxBatchSize: 2, capacity: 3))
        let held = try queue.reserve(imageCount: 2).get()
        #expect(queue.reserve(imageCount: 2).failure == .queueFull(capacity: 3, retryAfterSeconds: 1))
        let one = try queue.reserve(imageCount: 1).get()
        #expect(queue.isSaturated)
        one.release()
        #expect(!queue.isSaturated)
        #expect(try await queue.submit(4, reservation: held).get().output == 8)
        #expect(await queue.submit(5, reservation: held).failure != nil)   // used up
        await queue.shutdown()
    }

    @Test func aFullQueueRejectsAtOnce() async throws {
        let runner = DoublingRunner(gated: true)
        let queue = BatchQueue(runner: runner,
                               configuration: .init(maxBatchSize: 1, maxBatchDelay: .zero, capacity: 2))
        let first = Task { await queue.submit(1) }
        await runner.waitUntilRunning()          // job 1 holds the engine
        let second = Task { await queue.submit(2) }
        while queue.depth < 1 { try await Task.sleep(for: .milliseconds(1)) }
        let third = Task { await queue.submit(3) }
        while queue.depth < 2 { try await Task.sleep(for: .milliseconds(1)) }
        #expect(queue.isSaturated)
        let rejected = await queue.submit(4)
        #expect(rejected.failure == .queueFull(capacity: 2, retryAfterSeconds: 1))
        for _ in 0..<3 { runner.release() }
        #expect(try await first.value.get().output == 2)
        #expect(try await second.value.get().output == 4)
        #expect(try await third.value.get().output == 6)
        #expect(runner.recordedBatches == [[1], [2], [3]])
        await queue.shutdown()
    }

    @Test func aJobPastItsDeadlineIsDroppedFromTheQueue() async throws {
        let runner = DoublingRunner(gated: true)
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 1, maxBatchDelay: .zero))
        let blocker = Task { await queue.submit(1) }
        await runner.waitUntilRunning()
        let clock = ContinuousClock()
        let start = clock.now
        let late = await queue.submit(2, timeout: .milliseconds(50))
        #expect(late.failure == .deadlineExceeded(timeoutMilliseconds: 50))
        #expect(start.duration(to: clock.now) < .seconds(2))
        #expect(queue.depth == 0)
        runner.release()
        #expect(try await blocker.value.get().output == 2)
        // The expired job never reached the engine.
        let next = Task { await queue.submit(3) }
        runner.release()
        #expect(try await next.value.get().output == 6)
        #expect(runner.recordedBatches == [[1], [3]])
        await queue.shutdown()
    }

    @Test func aCancelledCallerIsDroppedBeforeItsBatchRuns() async throws {
        let runner = DoublingRunner(gated: true)
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 1, maxBatchDelay: .zero))
        let blocker = Task { await queue.submit(1) }
        await runner.waitUntilRunning()
        let gone = Task { await queue.submit(2) }
        while queue.depth < 1 { try await Task.sleep(for: .milliseconds(1)) }
        gone.cancel()
        #expect(await gone.value.failure == .cancelled)
        #expect(queue.depth == 0)
        runner.release()
        _ = await blocker.value
        let next = Task { await queue.submit(5) }
        runner.release()
        #expect(try await next.value.get().output == 10)
        #expect(runner.recordedBatches == [[1], [5]])
        await queue.shutdown()
    }

    @Test func anAlreadyCancelledCallerNeverEntersTheQueue() async throws {
        let runner = DoublingRunner()
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 1, maxBatchDelay: .zero))
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            return await queue.submit(9)
        }
        #expect(await task.value.failure == .cancelled)
        #expect(runner.recordedBatches.isEmpty)
        await queue.shutdown()
    }

    @Test func aFailingRunnerFailsEveryJobOfItsBatchAndTheQueueGoesOn() async throws {
        let runner = DoublingRunner()
        runner.setFailing()
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 4, maxBatchDelay: .zero))
        let result = await queue.submit(1)
        guard case .inferenceFailed(let message)? = result.failure else {
            Issue.record("expected inferenceFailed, got \(result)")
            return
        }
        #expect(message.contains("the fake engine broke"))
        await queue.shutdown()
    }

    @Test func shutdownDrainsQueuedJobsAndRefusesNewOnes() async throws {
        let runner = DoublingRunner(gated: true)
        let queue = BatchQueue(runner: runner, configuration: .init(maxBatchSize: 1, maxBatchDelay: .zero))
        let first = Task { await queue.submit(1) }
        await runner.waitUntilRunning()
        let queued = Task { await queue.submit(2) }
        while queue.depth < 1 { try await Task.sleep(for: .milliseconds(1)) }
        let stopping = Task { await queue.shutdown() }
        try await Task.sleep(for: .milliseconds(20))
        #expect(await queue.submit(3).failure == .shuttingDown)
        runner.release()
        runner.release()
        #expect(try await first.value.get().output == 2)
        #expect(try await queued.value.get().output == 4)
        await stopping.value
    }

    @Test func theObserverSeesDepthBatchesAndDrops() async throws {
        let seen = ObservedEvents()
        let observer = BatchQueueObserver(
            depthChanged: { seen.record(depth: $0) },
            batchRan: { images, _ in seen.record(batch: images) },
            jobStarted: { _ in seen.recordStart() },
            jobDropped: { seen.record(drop: $0) })
        let queue = BatchQueue(runner: DoublingRunner(),
                               configuration: .init(maxBatchSize: 2, maxBatchDelay: .seconds(30)), observer: observer)
        let first = try queue.reserve(imageCount: 1).get(), second = try queue.reserve(imageCount: 1).get()
        async let a = queue.submit(1, reservation: first)
        async let b = queue.submit(2, reservation: second)
        _ = await (a, b)
        _ = await queue.submit(1, imageCount: 5)
        let events = seen.snapshot
        #expect(events.batches == [2])
        #expect(events.starts == 2)
        #expect(events.maxDepth == 2)
        #expect(events.drops.isEmpty)   // a too-large job is refused before it is queued
        await queue.shutdown()
    }
}

final class ObservedEvents: @unchecked Sendable {
    struct Snapshot { var batches: [Int] = []; var starts = 0; var maxDepth = 0; var drops: [BatchQueueError] = [] }
    private let lock = NSLock()
    private var events = Snapshot()
    func record(depth: Int) { lock.withLock { events.maxDepth = max(events.maxDepth, depth) } }
    func record(batch: Int) { lock.withLock { events.batches.append(batch) } }
    func recordStart() { lock.withLock { events.starts += 1 } }
    func record(drop: BatchQueueError) { lock.withLock { events.drops.append(drop) } }
    var snapshot: Snapshot { lock.withLock { events } }
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}
