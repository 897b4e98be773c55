import HTTPServer

/// The queue's outcomes as the errors clients see. Apart from the queue so that it knows nothing of HTTP.
extension BatchQueueError {
    /// How a queue outcome reaches the client; a 503 for shutting down asks for a retry after `retryAfterSeconds`.
    public func httpError(retryAfterSeconds: Int) -> HTTPError {
        switch self {
        case .queueFull(let capacity, let retryAfter):
            return HTTPError(status: 503, code: "queue_full",
                                message: "the inference queue is full (\(capacity) images waiting); retry after \(retryAfter) s",
                                headers: [("Retry-After", String(retryAfter))])
        case .deadlineExceeded(let ms):
            return HTTPError(status: 504, code: "deadline_exceeded",
                                message: "no result within the request timeout of \(ms) ms; the image was dropped")
        case .cancelled:
            // The client is gone; nobody reads this, but it is logged and counted.
            return HTTPError(status: 499, code: "client_closed_request", message: "the client went away before its result was ready")
        case .shuttingDown:
            return HTTPError(status: 503, code: "shutting_down", message: "the server is shutting down and takes no new work",
                                headers: [("Retry-After", String(retryAfterSeconds))])
        case .invalidImageCount(let requested, let maximum):
            return HTTPError(status: 400, code: "too_many_images",
                                message: "a request may hold at most \(maximum) images (the maximum batch size), it has \(requested)")
        case .inferenceFailed(let message):
            return HTTPError(status: 500, code: "inference_failed", message: message)
        }
    }
}
