import CBAMEngine
import Testing
@testable import CBAMService

/// The inference thread fails a batch with an error, never the process.
@Suite struct ModelRunnerTests {
    @Test func aWrongSizedTensorFailsItsBatchAndTheNextBatchStillRuns() async throws {
        let model = try Fixtures.model()
        let size = model.config.input.size
        let queue = BatchQueue(runner: ModelRunner(model: model), configuration: .init(maxBatchSize: 4, maxBatchDelay: .zero))
        let wrong = PreparedImages(tensor: [Float](repeating: 0, count: 5), count: 1, wantsAttention: false)
        let failed = await queue.submit(wrong)
        guard case .failure(.inferenceFailed(let message)) = failed else {
            Issue.record("expected inference_failed, got \(failed)")
            await queue.shutdown()
            return
        }
        #expect(message.contains("5 floats"))
        #expect(message.contains("[3,\(size),\(size)]"))
        let right = PreparedImages(tensor: [Float](repeating: 0, count: 3 * size * size), count: 1, wantsAttention: false)
        let output = try await queue.submit(right).get().output
        #expect(output.logits.count == model.config.numClasses)
        await queue.shutdown()
    }

    @Test func theRunnerRejectsABatchWhoseImageCountDisagreesWithItsJobs() throws {
        let model = try Fixtures.model()
        let size = model.config.input.size
        let runner = ModelRunner(model: model)
        let one = PreparedImages(tensor: [Float](repeating: 0, count: 3 * size * size), count: 1, wantsAttention: false)
        #expect(throws: PreparedTensorSizeError.self) { try runner.run([one], imageCount: 2) }
        #expect(try runner.run([one, one], imageCount: 2).count == 2)
    }
}
