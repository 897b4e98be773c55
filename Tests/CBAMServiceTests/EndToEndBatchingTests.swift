import CBAMEngine
import Foundation
import Testing
@testable import CBAMService

extension EndToEnd {
    @Suite struct Batching {
        @Test func sixteenConcurrentClientsShareBatchesAndEachGetsItsOwnResult() async throws {
            let live = try LiveServer { $0.maxBatchDelay = .milliseconds(20); $0.maxBatchSize = 8 }
            try await live.serving {
                let reference = try Reference()
                let images = (0..<48).map { Fixtures.randomPNG(seed: UInt64($0)) }
                let expected = try images.map { topK(try reference.probabilities($0), k: 2) }
                // Distinct images must differ in their answers, or the check below proves nothing.
                #expect(Set(expected.map { "\($0[0].index)-\($0[0].score)" }).count > 40)

                let outcomes = try await withThrowingTaskGroup(of: (Int, TestResponse).self) { group in
                    for client in 0..<16 {
                        group.addTask {
                            var last: (Int, TestResponse)?
                            for round in 0..<3 {
                                let i = client * 3 + round
                                last = (i, try await live.request("POST", "/v1/predict?top_k=2", headers: [("Content-Type", "image/png")],
                                                                  body: images[i]))
                                if round < 2 { try #require(last!.1.status == 200); try check(last!, expected) }
                            }
                            return last!
                        }
                    }
                    return try await group.reduce(into: [(Int, TestResponse)]()) { $0.append($1) }
                }
                for outcome in outcomes { try check(outcome, expected) }

                let metrics = try await live.metrics()
                let batches = try #require(metricValue(metrics, "cbam_inference_batch_size_count"))
                let single = try #require(metricValue(metrics, #"cbam_inference_batch_size_bucket{le="1.0"}"#))
                let images_ = try #require(metricValue(metrics, "cbam_inference_batch_size_sum"))
                #expect(images_ == 48)
                #expect(batches < 48, "48 requests from 16 concurrent clients ran in \(batches) batches")
                #expect(single < batches, "some batches held more than one image")
                #expect(metricValue(metrics, #"cbam_http_requests_total{route="/v1/predict",method="POST",status="200"}"#) == 48)
                #expect(metrics.contains("cbam_queue_wait_seconds_count 48"))
            }
        }

        private func check(_ outcome: (Int, TestResponse), _ expected: [[ClassScore]]) throws {
            let (i, response) = outcome
            #expect(response.status == 200)
            let predictions = try #require(try response.json()["predictions"] as? [[String: Any]])
            for (prediction, truth) in zip(predictions, expected[i]) {
                #expect(prediction["index"] as? Int == truth.index, "image \(i)")
                #expect(abs(((prediction["probability"] as? NSNumber)?.floatValue ?? -1) - truth.score) < 1e-5, "image \(i)")
            }
        }

        @Test func aRequestPastItsDeadlineGets504AndIsDropped() async throws {
            // With an image still "decoding", a request waits up to 5 s for it: a 100 ms deadline passes long before.
            let live = try LiveServer { $0.maxBatchDelay = .seconds(5); $0.requestTimeout = .milliseconds(100) }
            try await live.serving {
                let held = try live.holdBatches()
                defer { held.release() }
                let clock = ContinuousClock()
                let start = clock.now
                let late = try await live.request("POST", "/v1/predict", body: Fixtures.image("photo0.jpg"))
                #expect(late.status == 504)
                #expect(late.errorCode == "deadline_exceeded")
                #expect(start.duration(to: clock.now) < .seconds(4))
                let perRequest = try await live.request("POST", "/v1/predict?timeout_ms=50", body: Fixtures.image("photo0.jpg"))
                #expect(perRequest.status == 504)
                #expect(perRequest.text.contains("50 ms"))
                let metrics = try await live.metrics()
                #expect(metricValue(metrics, "cbam_inference_batch_size_count") == 0, "dropped images never reach the engine")
                #expect(metricValue(metrics, "cbam_queue_depth") == 0)
                #expect(metricValue(metrics, #"cbam_errors_total{code="deadline_exceeded"}"#) == 2)
            }
        }

        @Test func aFullQueueAnswers503WithRetryAfterAtOnce() async throws {
            // Room for two images, one held as if still decoding: the first upload fills the queue and waits up to
            // 3 s for the held one, so the queue stays full meanwhile.
            let live = try LiveServer { $0.maxQueue = 2; $0.maxBatchSize = 2; $0.maxBatchDelay = .seconds(3) }
            try await live.serving {
                let held = try live.holdBatches()
                let clock = ContinuousClock()
                let first = Task { () throws -> (TestResponse, ContinuousClock.Instant) in
                    let response = try await live.request("POST", "/v1/predict", body: Fixtures.image("photo0.jpg"))
                    return (response, clock.now)
                }
                while metricValue(try await live.metrics(), "cbam_queue_depth") != 1 { try await Task.sleep(for: .milliseconds(10)) }
                #expect(try await live.request("GET", "/readyz").status == 503)
                let rejected = try await live.request("POST", "/v1/predict", body: Fixtures.image("photo1.jpg"))
                let rejectedAt = clock.now
                #expect(rejected.status == 503)
                #expect(rejected.errorCode == "queue_full")
                #expect(rejected.header("Retry-After") == "1")
                held.release()
                let (firstResponse, firstDoneAt) = try await first.value
                #expect(firstResponse.status == 200)
                #expect(rejectedAt < firstDoneAt, "the rejection came at once, not after the queued request")
                #expect(try await live.request("GET", "/readyz").status == 200)
            }
        }

        @Test func aClientThatHangsUpIsDroppedBeforeItsBatchRuns() async throws {
            let live = try LiveServer { $0.maxBatchDelay = .seconds(4) }
            try await live.serving {
                let held = try live.holdBatches()
                defer { held.release() }
                _ = try await TestClient.send(port: live.port, method: "POST", target: "/v1/predict",
                                              body: Fixtures.image("photo0.jpg"), closeAfterSending: true)
                // The request reaches the queue (where it waits for the held image), its connection closes, and the
                // server cancels its task: the job leaves the queue long before its 4 s batching delay is up.
                let clock = ContinuousClock()
                let deadline = clock.now + .seconds(3)
                var metrics = try await live.metrics()
                while clock.now < deadline && metricValue(metrics, #"cbam_errors_total{code="client_closed_request"}"#) != 1 {
                    try await Task.sleep(for: .milliseconds(20))
                    metrics = try await live.metrics()
                }
                #expect(metricValue(metrics, #"cbam_errors_total{code="client_closed_request"}"#) == 1)
                #expect(metricValue(metrics, "cbam_queue_depth") == 0)
                #expect(metricValue(metrics, "cbam_inference_batch_size_count") == 0)
            }
        }
    }
}
