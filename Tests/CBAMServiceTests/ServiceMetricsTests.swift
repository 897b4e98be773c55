import Testing
@testable import CBAMService

@Suite struct ServiceMetricsTests {
    @Test func exposesRequestsErrorsImagesAndBatchingInPrometheusText() {
        let metrics = ServiceMetrics()
        metrics.recordRequest(route: "/v1/predict", method: "POST", status: 200, duration: .milliseconds(12))
        metrics.recordRequest(route: "/v1/predict", method: "POST", status: 200, duration: .milliseconds(3))
        metrics.recordRequest(route: "/v1/predict", method: "POST", status: 415, duration: .milliseconds(1))
        metrics.recordError(code: "unsupported_media_type")
        metrics.recordImageDecoded(format: "jpeg")
        let observer = metrics.queueObserver
        observer.depthChanged(3)
        observer.batchRan(4, .milliseconds(7))
        observer.batchRan(1, .milliseconds(2))
        observer.jobStarted(.milliseconds(1))
        observer.jobDropped(.deadlineExceeded(timeoutMilliseconds: 5))   // counted by the HTTP observer instead
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(text.contains(#"cbam_http_requests_total{route="/v1/predict",method="POST",status="200"} 2"#))
        #expect(text.contains(#"cbam_http_requests_total{route="/v1/predict",method="POST",status="415"} 1"#))
        #expect(text.contains(#"cbam_http_request_duration_seconds_count{route="/v1/predict"} 3"#))
        #expect(text.contains(#"cbam_errors_total{code="unsupported_media_type"} 1"#))
        #expect(!text.contains(#"code="deadline_exceeded""#))
        #expect(text.contains(#"cbam_images_decoded_total{format="jpeg"} 1"#))
        #expect(text.contains("cbam_queue_depth 3"))
        #expect(text.contains("cbam_inference_batch_size_count 2"))
        #expect(text.contains(#"cbam_inference_batch_size_bucket{le="1.0"} 1"#))
        #expect(text.contains(#"cbam_inference_batch_size_bucket{le="4.0"} 2"#))
        #expect(text.contains("cbam_inference_batch_size_sum 5"))
        #expect(text.contains("cbam_inference_duration_seconds_count 2"))
        #expect(text.contains("cbam_queue_wait_seconds_count 1"))
    }

    @Test func madeUpMethodsShareOneSeries() {
        let metrics = ServiceMetrics()
        for i in 0..<500 {
            metrics.recordRequest(route: "unmatched", method: "X\(i)", status: 405, duration: .milliseconds(1))
        }
        metrics.recordRequest(route: "unmatched", method: "DELETE", status: 405, duration: .milliseconds(1))
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        #expect(text.contains(#"cbam_http_requests_total{route="unmatched",method="other",status="405"} 500"#))
        #expect(text.contains(#"cbam_http_requests_total{route="unmatched",method="DELETE",status="405"} 1"#))
        #expect(!text.contains(#"method="X1""#))
    }

    @Test func twoServicesKeepSeparateCounts() {
        let a = ServiceMetrics(), b = ServiceMetrics()
        a.recordError(code: "x")
        #expect(String(decoding: a.exposition(), as: UTF8.self).contains(#"cbam_errors_total{code="x"} 1"#))
        #expect(!String(decoding: b.exposition(), as: UTF8.self).contains(#"code="x""#))
    }
}

@Suite struct APIKeyTests {
    @Test func acceptsOnlyTheExactBearerKey() throws {
        let key = try #require(APIKey("s3cret-key"))
        #expect(key.accepts(authorization: "Bearer s3cret-key"))
        #expect(key.accepts(authorization: "bearer s3cret-key"))
        #expect(!key.accepts(authorization: nil))
        #expect(!key.accepts(authorization: "Bearer s3cret-ke"))
        #expect(!key.accepts(authorization: "Bearer s3cret-key2"))
        #expect(!key.accepts(authorization: "Bearer S3cret-key"))
        #expect(!key.accepts(authorization: "Basic s3cret-key"))
        #expect(!key.accepts(authorization: "s3cret-key"))
        #expect(!key.accepts(authorization: "Bearer "))
    }

    @Test func noKeyMeansNoCheck() {
        #expect(APIKey(nil) == nil)
        #expect(APIKey("") == nil)
    }

    @Test func lengthsThatDifferByAMultipleOf256StillDiffer() {
        let secret = Array("k".utf8)
        #expect(!APIKey.constantTimeEqual(Array(repeating: UInt8(ascii: "k"), count: 257), secret))
        #expect(APIKey.constantTimeEqual(secret, secret))
    }
}
