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
}
