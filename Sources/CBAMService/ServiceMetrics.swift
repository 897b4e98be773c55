import Metrics
import Prometheus
import Synchronization

/// The service's metrics, recorded through swift-metrics into a Prometheus registry of its own (so that two
/// servers in one process, as in the tests, do not share counts) and exposed in text format at `/metrics`.
public final class ServiceMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    static let latencyBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]
    static let batchSizeBuckets: [Double] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64]

    private struct RequestKey: Hashable {
        let route: String, method: String, status: Int
    }
    private let requestHandles = Mutex<[RequestKey: (Metrics.Counter, Metrics.Timer)]>([:])
    private let counters = Mutex<[String: Metrics.Counter]>([:])
    private let queueDepth: Meter
    private let batchSize: Recorder
    private let queueWait: Metrics.Timer
    private let inferenceTime: Metrics.Timer

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = Self.latencyBuckets
        factory.valueHistogramBuckets["cbam_inference_batch_size"] = Self.batchSizeBuckets
        self.factory = factory
        queueDepth = Meter(label: "cbam_queue_depth", factory: factory)
        batchSize = Recorder(label: "cbam_inference_batch_size", aggregate: true, factory: factory)
        queueWait = Metrics.Timer(label: "cbam_queue_wait_seconds", factory: factory)
        inferenceTime = Metrics.Timer(label: "cbam_inference_duration_seconds", factory: factory)
        queueDepth.set(0)
    }

    /// The methods counted by name; any other token a client sends is counted as "other", so that made-up methods
    /// cannot grow the number of series (and the handle cache) without bound.
    static let countedMethods: Set<String> = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"]

    /// One HTTP response: counted by route template, method and status; its latency by route.
    public func recordRequest(route: String, method: String, status: Int, duration: Duration) {
        let method = Self.countedMethods.contains(method) ? method : "other"
        let handles = Self.cached(RequestKey(route: route, method: method, status: status), in: requestHandles) {
            (Metrics.Counter(label: "cbam_http_requests_total",
                             dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory),
             Metrics.Timer(label: "cbam_http_request_duration_seconds", dimensions: [("route", route)], factory: factory))
        }
        handles.0.increment()
        handles.1.recordNanoseconds(duration.nanoseconds)
    }

    public func recordError(code: String) { counter("cbam_errors_total", "code", code).increment() }

    public func recordImageDecoded(format: String) { counter("cbam_images_decoded_total", "format", format).increment() }

    /// The counter `label{dimension="value"}`, made once and then looked up: making one through swift-metrics takes
    /// the registry's lock and builds its label set, on every request otherwise.
    private func counter(_ label: String, _ dimension: String, _ value: String) -> Metrics.Counter {
        Self.cached("\(label)\u{0}\(value)", in: counters) {
            Metrics.Counter(label: label, dimensions: [(dimension, value)], factory: factory)
        }
    }

    /// `cache[key]`, made by `make` (under the cache's lock) the first time.
    private static func cached<Key: Hashable & Sendable, Value: Sendable>(
        _ key: Key, in cache: borrowing Mutex<[Key: Value]>, make: () -> Value
    ) -> Value {
        cache.withLock { cache in
            if let value = cache[key] { return value }
            let value = make()
            cache[key] = value
            return value
        }
    }

    /// Hooks for the batching queue.
    public var queueObserver: BatchQueueObserver {
        BatchQueueObserver(
            depthChanged: { [queueDepth] in queueDepth.set(Double($0)) },
            batchRan: { [batchSize, inferenceTime] images, time in
                batchSize.record(images)
                inferenceTime.recordNanoseconds(time.nanoseconds)
            },
            // Dropped jobs are counted once, by their error response (the server observes even the 499 of a
            // client that went away).
            jobStarted: { [queueWait] in queueWait.recordNanoseconds($0.nanoseconds) })
    }

    /// Prometheus text exposition format.
    public func exposition() -> [UInt8] { registry.emitToBuffer() }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
