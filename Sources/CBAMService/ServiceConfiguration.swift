import CBAMEngine
import Foundation

/// How the service batches, bounds and guards its work (the `serve` flags that are not the HTTP server's).
/// `ServiceConfiguration.default` holds the defaults; `cbam-serve serve` reads its help text and fallbacks there.
public struct ServiceConfiguration: Sendable {
    public static let `default` = ServiceConfiguration()

    public var maxBatchSize = 8
    public var maxBatchDelay: Duration = .milliseconds(2)
    /// Most images waiting in the batching queue; beyond it requests get 503 with Retry-After.
    public var maxQueue = 256
    /// Threads that decode and preprocess uploads (their own, not Swift concurrency's pool): half the cores, so that
    /// decoding and the engine (which uses every core) do not oversubscribe them. One decode thread beside a
    /// two-thread engine gave 4-8 % more images/s than two on the 2-core machine (docs/peer-comparison.md).
    public var decodeThreads = max(1, AvailableCores.count / 2)
    /// Default deadline of a request (`timeout_ms` overrides it per request, up to `maxRequestTimeout`).
    public var requestTimeout: Duration = .seconds(10)
    public var maxRequestTimeout: Duration = .seconds(300)
    /// When set, every route but the health probes needs `Authorization: Bearer <key>`.
    public var apiKey: String?
    /// Attention store: responses kept, bytes kept, and for how long.
    public var attentionStoreEntries = 1024
    public var attentionStoreBytes = 256 << 20
    public var attentionTTL: Duration = .seconds(600)
    /// Default `top_k` of `/v1/predict`.
    public var defaultTopK = 5
    /// The `Retry-After` seconds of the service's 503s (queue full, shutting down, not ready).
    public var retryAfterSeconds = 1
    /// Version string reported by `/v2`.
    public var serverVersion = "1.0.0"

    public init() {}
}
