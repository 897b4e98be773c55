/// An error a client sees: an HTTP status, a snake_case code and a sentence, in the one JSON error shape
/// `{"error": {"code": ..., "message": ...}}`.
public struct ServiceError: Error, Equatable, Sendable, CustomStringConvertible {
    public let status: Int
    public let code: String
    public let message: String
    /// Extra response headers, such as `Retry-After` on 503.
    public let headers: [(String, String)]

    public init(status: Int, code: String, message: String, headers: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public var description: String { "\(status) \(code): \(message)" }

    public static func == (a: ServiceError, b: ServiceError) -> Bool {
        a.status == b.status && a.code == b.code && a.message == b.message
            && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
    }

    public static func badRequest(_ code: String, _ message: String) -> ServiceError {
        ServiceError(status: 400, code: code, message: message)
    }

    /// The JSON body of this error.
    public var jsonBody: [UInt8] {
        Array("{\"error\":{\"code\":\(JSONText.string(code)),\"message\":\(JSONText.string(message))}}".utf8)
    }
}

extension BatchQueueError {
    /// How a queue outcome reaches the client.
    public var serviceError: ServiceError {
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
                                headers: [("Retry-After", "1")])
        case .invalidImageCount(let requested, let maximum):
            return ServiceError(status: 400, code: "too_many_images",
                                message: "a request may hold at most \(maximum) images (the maximum batch size), it has \(requested)")
        case .inferenceFailed(let message):
            return ServiceError(status: 500, code: "inference_failed", message: message)
        }
    }
}

/// Small JSON text helpers for hand-written hot-path JSON.
enum JSONText {
    static func string(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                out += "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
                    + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    /// Shortest text that reads back as the same Float; JSON has no NaN or infinity, so those become null.
    static func number(_ x: Float) -> String {
        guard x.isFinite else { return "null" }
        return x.description
    }

    static func numbers(_ xs: some Collection<Float>) -> String {
        "[" + xs.map(number).joined(separator: ",") + "]"
    }
}
