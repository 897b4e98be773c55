// The one error shape of the API: a status, a snake_case code and a sentence.

/// An error a handler can throw or return; it becomes `{"error": {"code": ..., "message": ...}}`.
public struct HTTPError: Error, Sendable, Equatable, CustomStringConvertible {
    public var status: HTTPStatus
    public var code: String
    public var message: String

    public init(status: HTTPStatus, code: String, message: String) {
        self.status = status
        self.code = code
        self.message = message
    }

    public var description: String { "\(status.code) \(code): \(message)" }

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
