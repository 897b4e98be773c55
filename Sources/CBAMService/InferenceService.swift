import CBAMEngine
import CBAMImage
import Foundation
import HTTPServer
import Logging

/// The service that joins the HTTP server, the image pipeline and the engine: it owns the batching queue (and
/// through it the model), the attention store and the metrics, and builds the router with every route.
public final class InferenceService: Sendable {
    public let configuration: ServiceConfiguration
    public let modelName: String
    public let modelConfig: ModelConfig
    public let labels: [String]
    public let summary: ModelSummary
    public let metrics: ServiceMetrics
    let queue: BatchQueue<ModelRunner>
    let attentionStore: AttentionStore<StoredAttention>
    let decoder: ImageDecoder
    let preprocessor: Preprocessor
    let decodePool: DecodePool
    let apiKey: APIKey?
    let logger: Logger

    /// Takes ownership of `model`: from now on only the inference thread touches it.
    public init(model: CBAMModel, configuration: ServiceConfiguration = .default,
                logger: Logger = Logger(label: "cbam.service")) {
        self.configuration = configuration
        modelName = model.config.name
        modelConfig = model.config
        labels = model.labels
        summary = model.summary()
        let metrics = ServiceMetrics()
        self.metrics = metrics
        var queueConfiguration = BatchQueue<ModelRunner>.Configuration(
            maxBatchSize: configuration.maxBatchSize, maxBatchDelay: configuration.maxBatchDelay,
            capacity: configuration.maxQueue, defaultTimeout: configuration.requestTimeout)
        queueConfiguration.retryAfterSeconds = configuration.retryAfterSeconds
        queue = BatchQueue(runner: ModelRunner(model: model), configuration: queueConfiguration,
                           observer: metrics.queueObserver)
        attentionStore = AttentionStore(limits: .init(maxEntries: configuration.attentionStoreEntries,
                                                      maxBytes: configuration.attentionStoreBytes,
                                                      timeToLive: configuration.attentionTTL))
        let input = model.config.input
        decoder = ImageDecoder(exifTranspose: input.exifTranspose)
        preprocessor = Preprocessor(size: input.size, resize: input.resize, mean: input.mean, std: input.std)
        decodePool = DecodePool(threads: configuration.decodeThreads)
        apiKey = APIKey(configuration.apiKey)
        self.logger = logger
    }

    public var inputSize: Int { modelConfig.input.size }
    public var numClasses: Int { modelConfig.numClasses }

    /// Ready: the queue takes work and is not saturated.
    public var isReady: Bool { !queue.isSaturated && !queue.isShuttingDown }

    /// Every route of the service.
    public func makeRouter() -> Router {
        let router = Router()
        addHealthRoutes(to: router)
        addModelRoutes(to: router)
        addPredictionRoutes(to: router)
        addAttentionRoutes(to: router)
        addInferenceProtocolRoutes(to: router)
        return router
    }

    /// Records every response the server writes (404, 405 and 413 included) in the metrics.
    public var observer: HTTPObserver {
        { [metrics] request, response, duration in
            let status = response.status.code
            metrics.recordRequest(route: request.route ?? "unmatched",
                                  method: request.method.rawValue, status: status, duration: duration)
            if status >= 400 { metrics.recordError(code: response.errorCode ?? "http_\(status)") }
        }
    }

    /// Lets queued work finish and stops the inference thread. Call after the HTTP server has drained.
    public func shutdown() async {
        await queue.shutdown()
        decodePool.stop()
    }

    // MARK: - Shared by the routes

    /// How a route writes its errors.
    enum ErrorShape {
        /// `{"error": {"code": ..., "message": ...}}`, the API's one shape.
        case service
        /// The Open Inference Protocol's `{"error": "<message>"}`, which Triton's and KServe's clients parse,
        /// with the code alongside: `{"error": "<message>", "code": "..."}`.
        case inferenceProtocol
    }

    /// Wraps a handler: the API key check (when configured), and typed errors turned into the route's error shape.
    func route(public isPublic: Bool = false, errors shape: ErrorShape = .service,
               _ handler: @escaping @Sendable (HTTPRequest) async throws(HTTPError) -> HTTPResponse) -> HTTPHandler {
        { [apiKey] request in
            do throws(HTTPError) {
                if !isPublic, let apiKey, !apiKey.accepts(authorization: request.headers["Authorization"]) {
                    throw HTTPError(status: 401, code: "unauthorized",
                                       message: "this route needs the header Authorization: Bearer <API key>",
                                       headers: [("WWW-Authenticate", "Bearer")])
                }
                return try await handler(request)
            } catch {
                return HTTPResponse.error(error, shape: shape)
            }
        }
    }

    /// A 404 unless `name` is this service's model.
    func checkModel(_ name: String?) throws(HTTPError) {
        guard let name, name == modelName else {
            throw HTTPError(status: 404, code: "model_not_found",
                               message: "no model named \"\(name ?? "")\"; this server serves \"\(modelName)\"")
        }
    }

    /// The request's deadline: `timeout_ms` from the query or the OIP parameters, else the configured default.
    func timeout(milliseconds: Int?) -> Duration {
        guard let milliseconds else { return configuration.requestTimeout }
        return min(.milliseconds(milliseconds), configuration.maxRequestTimeout)
    }

    /// Holds room in the batching queue for `count` images before any work is done for them, so that a full
    /// server refuses an upload in microseconds instead of after decoding it.
    func admit(_ count: Int) throws(HTTPError) -> Reservation {
        guard count >= 1 else { throw .badRequest("shape_mismatch", "the batch dimension must be at least 1") }
        switch queue.reserve(imageCount: count) {
        case .success(let reservation): return reservation
        case .failure(let error): throw error.httpError(retryAfterSeconds: configuration.retryAfterSeconds)
        }
    }

    /// Decodes and preprocesses encoded images into one NCHW tensor on the decode pool (never on Swift
    /// concurrency's threads, never on the inference thread), within the request's `deadline`.
    /// Returns the tensor and the time it took.
    func prepare(_ files: [(name: String?, bytes: [UInt8])], deadline: ContinuousClock.Instant) async throws(HTTPError)
        -> (tensor: [Float], decode: Duration, preprocess: Duration)
    {
        try await decodePool.run { [self] in
            Result { () throws(HTTPError) in try prepareHere(files, deadline: deadline) }
        }.get()
    }

    private func prepareHere(_ files: [(name: String?, bytes: [UInt8])], deadline: ContinuousClock.Instant) throws(HTTPError)
        -> (tensor: [Float], decode: Duration, preprocess: Duration)
    {
        let clock = ContinuousClock()
        var decodeTime = Duration.zero, preprocessTime = Duration.zero
        let per = preprocessor.elementCount
        var tensor = [Float](repeating: 0, count: files.count * per)
        for (index, file) in files.enumerated() {
            let start = clock.now
            let decoded: ImageDecoder.Decoded
            do {
                decoded = try decoder.decodeWithDetails(file.bytes, targetShorterSide: preprocessor.resize,
                                                        timeBudget: start.duration(to: deadline))
            } catch {
                throw HTTPError(image: error, file: file.name ?? (files.count > 1 ? "image \(index)" : nil))
            }
            metrics.recordImageDecoded(format: decoded.format.rawValue)
            let decodedAt = clock.now
            tensor.withUnsafeMutableBufferPointer { buffer in
                preprocessor.write(decoded.image, into: buffer.baseAddress! + index * per)
            }
            decodeTime += start.duration(to: decodedAt)
            preprocessTime += decodedAt.duration(to: clock.now)
        }
        return (tensor, decodeTime, preprocessTime)
    }

    /// Runs prepared images through the batching queue, in the room `reservation` holds.
    func infer(_ images: PreparedImages, reservation: Reservation, deadline: ContinuousClock.Instant, timeout: Duration)
        async throws(HTTPError) -> BatchResult<ImagesOutput>
    {
        let remaining = max(ContinuousClock.now.duration(to: deadline), .milliseconds(1))
        switch await queue.submit(images, reservation: reservation, timeout: remaining) {
        case .success(let result): return result
        case .failure(.deadlineExceeded):  // named by the request's whole timeout, not the part left for the queue
            throw BatchQueueError.deadlineExceeded(timeoutMilliseconds: timeout.milliseconds)
                .httpError(retryAfterSeconds: configuration.retryAfterSeconds)
        case .failure(let error):
            if case .inferenceFailed(let message) = error { logger.error("inference failed", metadata: ["error": "\(message)"]) }
            throw error.httpError(retryAfterSeconds: configuration.retryAfterSeconds)
        }
    }

    func label(_ index: Int) -> String { index < labels.count ? labels[index] : String(index) }
}

extension HTTPError {
    /// How an image that cannot be read reaches the client: 415 for formats we do not read, 413 for images too
    /// large to decode, 400 for broken files.
    init(image error: ImageError, file: String?) {
        let status: Int
        switch error.code {
        case "unsupported_format": status = 415
        case "image_too_large", "image_too_complex": status = 413
        case "decode_timeout": status = 504
        case "out_of_memory": status = 503
        default: status = 400
        }
        self.init(status: status, code: error.code, message: file.map { "\($0): \(error.message)" } ?? error.message)
    }
}

extension HTTPResponse {
    static func error(_ error: HTTPError, shape: InferenceService.ErrorShape) -> HTTPResponse {
        guard shape == .inferenceProtocol else { return .error(error) }
        var response = HTTPResponse.json(InferenceProtocolError(error: error.message, code: error.code), status: error.status)
        response.errorCode = error.code
        for (name, value) in error.headers { response.headers.set(name, value) }
        return response
    }
}
