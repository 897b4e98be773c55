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
