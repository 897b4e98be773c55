// The one error shape of the API: a status, a snake_case code and a sentence.

/// An error a handler can throw or return, the server's and the service's alike; it becomes
/// `{"error": {"code": ..., "message": ...}}` with its status and headers, and the code reaches the metrics.
public struct HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: HTTPStatus
    public var code: String
    public var message: String
    /// Extra response headers, such as `Retry-After` on 503.
    public var headers: [(String, String)]

    public init(status: HTTPStatus, code: String, message: String, headers: [(String, String)] = []) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    public init(status: Int, code: String, message: String, headers: [(String, String)] = []) {
        self.init(status: HTTPStatus(code: status), code: code, message: message, headers: headers)
    }

    public static func badRequest(_ code: String, _ message: String) -> HTTPError {
        HTTPError(status: .badRequest, code: code, message: message)
    }

    public var description: String { "\(status.code) \(code): \(message)" }

    public static func == (a: HTTPError, b: HTTPError) -> Bool {
        a.status == b.status && a.code == b.code && a.message == b.message
            && a.headers.map { "\($0.0): \($0.1)" } == b.headers.map { "\($0.0): \($0.1)" }
    }

    /// The JSON body `{"error":{"code":"...","message":"..."}}`.
    public var jsonBody: [UInt8] {
        // Two strings: nothing in it can fail to encode.
        (try? JSONBodyEncoder.encode(ErrorResponse(error: .init(code: code, message: message)))) ?? []
    }
}

/// The API's one error shape: `{"error": {"code": "...", "message": "..."}}`.
public struct ErrorResponse: Codable, Sendable, Equatable {
    public struct Detail: Codable, Sendable, Equatable {
        public var code: String
        public var message: String

        public init(code: String, message: String) {
            self.code = code
            self.message = message
        }
    }

    public var error: Detail

    public init(error: Detail) { self.error = error }
}
