// A response as handlers build it. The server adds Content-Length, Date, Connection and X-Request-Id.

public struct HTTPResponse: Sendable {
    public var status: HTTPStatus
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// The snake_case code of an error response, for metrics and logs (they need not parse the body for it).
    public var errorCode: String?

    public init(status: HTTPStatus = .ok, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A UTF-8 text body.
    public static func text(_ text: String, status: HTTPStatus = .ok, contentType: String = "text/plain; charset=utf-8") -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": contentType], body: Array(text.utf8))
    }

    /// A body that is already JSON.
    public static func json(bytes: [UInt8], status: HTTPStatus = .ok) -> HTTPResponse {
        HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: bytes)
    }

    /// The API's one error shape: `{"error": {"code": "...", "message": "..."}}`.
    public static func error(status: HTTPStatus, code: String, message: String) -> HTTPResponse {
        error(HTTPError(status: status, code: code, message: message))
    }

    public static func error(_ error: HTTPError) -> HTTPResponse {
        var response = json(bytes: error.jsonBody, status: error.status)
        response.errorCode = error.code
        for (name, value) in error.headers { response.headers.set(name, value) }
        return response
    }
}
