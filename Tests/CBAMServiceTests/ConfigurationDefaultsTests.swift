import HTTPServer
import Testing
@testable import CBAMService

/// The defaults live in `ServiceConfiguration.default` and `HTTPServer.Configuration.default`; the rest reads them.
@Suite struct ConfigurationDefaultsTests {
    @Test func theQueueTakesItsDefaultsFromTheServiceConfiguration() {
        let service = ServiceConfiguration.default
        let queue = BatchQueue<DoublingRunner>.Configuration()
        #expect(queue.maxBatchSize == service.maxBatchSize)
        #expect(queue.maxBatchDelay == service.maxBatchDelay)
        #expect(queue.capacity == service.maxQueue)
        #expect(queue.defaultTimeout == service.requestTimeout)
        #expect(queue.retryAfterSeconds == service.retryAfterSeconds)
    }

    @Test func theConfiguredRetryAfterReachesTheClient() async throws {
        var configuration = BatchQueue<DoublingRunner>.Configuration(maxBatchSize: 1, capacity: 1)
        configuration.retryAfterSeconds = 3
        let queue = BatchQueue(runner: DoublingRunner(), configuration: configuration)
        let held = try queue.reserve(imageCount: 1).get()
        let full = queue.reserve(imageCount: 1).failure
        #expect(full == .queueFull(capacity: 1, retryAfterSeconds: 3))
        #expect(full?.httpError(retryAfterSeconds: 9).headers.first { $0.0 == "Retry-After" }?.1 == "3")
        let shuttingDown = BatchQueueError.shuttingDown.httpError(retryAfterSeconds: 9)
        #expect(shuttingDown.status.code == 503)
        #expect(shuttingDown.headers.first { $0.0 == "Retry-After" }?.1 == "9")
        held.release()
        await queue.shutdown()
    }
}
