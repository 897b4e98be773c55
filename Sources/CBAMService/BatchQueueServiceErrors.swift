/// The queue's outcomes as the errors clients see. Apart from ServiceError.swift so that the request decoders can be
/// built without the queue (tools/fuzz-oip.sh compiles InferenceProtocolRequest.swift with ServiceError.swift alone).
extension BatchQueueError {
    /// How a queue outcome reaches the client; a 503 for shutting down asks for a retry after `retryAfterSeconds`.
    public func serviceError(retryAfterSeconds: Int) -> ServiceError {
        switch self {
        case .queueFull(let capacity, let retryAfter):
            return ServiceError(status: 503, code: "queue_full",
                                message: "the inference queue is full (\(capacity) images waiting); retry after \(retryAfter) s",
                                headers: [("Retry-After", String(retryAfter))])
        case .deadlineExceeded(let ms):
            return ServiceError(status: 504, code: "deadline_exceeded",
                                message: "no result within the request timeout of \(ms) ms; the image was dropped")
        case .cancelled:
            // The client is gone; nobody reads this, but it is logged and counted.
            return ServiceError(status: 499, code: "client_closed_request", message: "the client went away before its result was ready")
        case .shuttingDown:
            return ServiceError(status: 503, code: "shutting_down", message: "the server is shutting down and takes no new work",
                                headers: [("Retry-After", String(retryAfterSeconds))])
        case .invalidImageCount(let requested, let maximum):
            return ServiceError(status: 400, code: "too_many_images",
                                message: "a request may hold at most \(maximum) images (the maximum batch size), it has \(requested)")
        case .inferenceFailed(let message):
            return ServiceError(status: 500, code: "inference_failed", message: message)
        }
    }
}
