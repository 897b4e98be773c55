// JSON request and response bodies through Codable.
import Foundation

extension HTTPResponse {
    /// Encodes `value` with `JSONBodyEncoder` as the JSON body; an encoding failure becomes a 500 in the API's
    /// error shape.
    public static func json<T: Encodable>(_ value: T, status: HTTPStatus = .ok) -> HTTPResponse {
        do {
            return json(bytes: try JSONBodyEncoder.encode(value), status: status)
        } catch {
            return .error(status: .internalServerError, code: "encoding_failed", message: "The response could not be encoded as JSON: \(error).")
        }
    }
}

extension HTTPRequest {
    /// Decodes the body as JSON. A non-JSON Content-Type is a 415, a body that does not decode a 400.
    public func decodeJSON<T: Decodable>(_ type: T.Type = T.self, decoder: JSONDecoder = JSONDecoder()) throws(HTTPError) -> T {
        if let contentType, !Self.isJSON(contentType) {
            throw HTTPError(status: .unsupportedMediaType, code: "unsupported_media_type",
                            message: "Expected Content-Type application/json, got '\(contentType)'.")
        }
        if body.isEmpty {
            throw HTTPError(status: .badRequest, code: "invalid_json", message: "The request body is empty; a JSON document was expected.")
        }
        do {
            return try decoder.decode(T.self, from: Data(body))
        } catch let DecodingError.keyNotFound(key, _) {
            throw HTTPError(status: .badRequest, code: "invalid_json", message: "The JSON body lacks the field '\(key.stringValue)'.")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw HTTPError(status: .badRequest, code: "invalid_json", message: "The JSON field '\(path)' has the wrong type: \(context.debugDescription)")
        } catch {
            throw HTTPError(status: .badRequest, code: "invalid_json", message: "The request body is not valid JSON.")
        }
    }

    static func isJSON(_ contentType: String) -> Bool {
        let mediaType = mediaType(of: contentType)
        return mediaType == "application/json" || (mediaType.hasPrefix("application/") && mediaType.hasSuffix("+json"))
    }
}
