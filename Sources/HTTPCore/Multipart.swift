// multipart/form-data bodies (RFC 7578, delimiters from RFC 2046 §5.1.1), for file uploads.
import Glibc

/// One field of a form: a `name`, and for files a `filename` and usually a `contentType`.
public struct MultipartPart: Sendable {
    public var name: String
    public var filename: String?
    public var contentType: String?
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(name: String, filename: String? = nil, contentType: String? = nil, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8]) {
        self.name = name
        self.filename = filename
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }
}

public enum Multipart {
    public struct Limits: Sendable {
        public var maxParts: Int = 100
        public var maxPartHeaderBytes: Int = 8 * 1024
        public init() {}
    }

    /// Splits a multipart/form-data body into its parts.
    /// Wrong media type → 415 `unsupported_media_type`; anything malformed → 400 `invalid_multipart`.
    public static func parse(body: [UInt8], contentType: String, limits: Limits = Limits()) throws(HTTPError) -> [MultipartPart] {
        let delimiter = Array(("--" + (try boundary(fromContentType: contentType))).utf8)
        return try body.withUnsafeBufferPointer { p throws(HTTPError) in try parseParts(p, delimiter: delimiter, limits: limits) }
    }

    /// The `boundary` parameter of a `multipart/form-data` Content-Type.
    public static func boundary(fromContentType contentType: String) throws(HTTPError) -> String {
        guard let (mediaType, parameters) = parseParameterized(contentType[...]), mediaType == "multipart/form-data" else {
            throw HTTPError(status: .unsupportedMediaType, code: "unsupported_media_type",
                            message: "Expected Content-Type multipart/form-data, got '\(contentType)'.")
        }
        guard let boundary = parameters["boundary"] else {
            throw invalid("The multipart/form-data Content-Type has no boundary parameter.")
        }
        // RFC 2046: 1 to 70 characters, no line breaks.
        guard (1...70).contains(boundary.utf8.count), boundary.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw invalid("The multipart boundary must be 1 to 70 printable ASCII characters.")
        }
        return boundary
    }

    static func invalid(_ message: String) -> HTTPError {
        HTTPError(status: .badRequest, code: "invalid_multipart", message: message)
    }

    private static func parseParts(_ p: UnsafeBufferPointer<UInt8>, delimiter: [UInt8], limits: Limits) throws(HTTPError) -> [MultipartPart] {
        let crlfDelimiter = [0x0D, 0x0A] + delimiter
        // The first delimiter opens the body or follows a preamble and a CRLF.
        var pos: Int
        if p.count >= delimiter.count, matches(p, at: 0, delimiter) {
            pos = 0
        } else if let found = find(crlfDelimiter, in: p, from: 0) {
            pos = found + 2
        } else {
            throw invalid("The multipart body does not contain its boundary.")
        }
        var parts: [MultipartPart] = []
        while true {
            var i = pos + delimiter.count
            if i + 2 <= p.count, p[i] == UInt8(ascii: "-"), p[i + 1] == UInt8(ascii: "-") {
                return parts  // close delimiter; the epilogue is ignored
            }
            while i < p.count, p[i] == 0x20 || p[i] == 0x09 { i += 1 }  // transport padding
            guard i + 2 <= p.count, p[i] == 0x0D, p[i + 1] == 0x0A else {
                throw invalid("A multipart boundary line is not followed by CRLF, or the body ends before the closing boundary.")
            }
            if parts.count == limits.maxParts {
                throw invalid("The multipart body has more than \(limits.maxParts) parts.")
            }
            let headerStart = i + 2
            var headers = HTTPHeaders()
            let contentStart: Int
            if headerStart + 2 <= p.count, p[headerStart] == 0x0D, p[headerStart + 1] == 0x0A {
                contentStart = headerStart + 2
            } else {
                guard let headerEnd = find([0x0D, 0x0A, 0x0D, 0x0A], in: p, from: headerStart),
                      headerEnd - headerStart <= limits.maxPartHeaderBytes else {
                    if let headerEnd = find([0x0D, 0x0A, 0x0D, 0x0A], in: p, from: headerStart), headerEnd - headerStart > limits.maxPartHeaderBytes {
                        throw invalid("The headers of a multipart part exceed \(limits.maxPartHeaderBytes) bytes.")
                    }
                    throw invalid("The headers of a multipart part are not terminated by an empty line.")
                }
                var lineStart = headerStart
                while lineStart < headerEnd + 2 {
                    var lineEnd = lineStart
                    while !(p[lineEnd] == 0x0D && p[lineEnd + 1] == 0x0A) { lineEnd += 1 }
                    do {
                        let (name, value) = try HTTPParser.parseField(UnsafeBufferPointer(rebasing: p[lineStart..<lineEnd]))
                        headers.add(name, value)
                    } catch {
                        throw invalid("A multipart part has a malformed header line: \(error.message)")
                    }
                    lineStart = lineEnd + 2
                }
                contentStart = headerEnd + 4
            }
            guard let contentEnd = find(crlfDelimiter, in: p, from: contentStart) else {
                throw invalid("The multipart body ends before the closing boundary.")
            }
            parts.append(try makePart(headers: headers, body: Array(UnsafeBufferPointer(rebasing: p[contentStart..<contentEnd]))))
            pos = contentEnd + 2
        }
    }

    private static func makePart(headers: HTTPHeaders, body: [UInt8]) throws(HTTPError) -> MultipartPart {
        guard let disposition = headers["Content-Disposition"] else {
            throw invalid("A multipart part has no Content-Disposition header.")
        }
        guard let (kind, parameters) = parseParameterized(disposition[...]), kind == "form-data" else {
            throw invalid("A multipart part's Content-Disposition is not 'form-data'.")
        }
        guard let name = parameters["name"] else {
            throw invalid("A multipart part's Content-Disposition has no name parameter.")
        }
        var filename = parameters["filename"]
        if let extended = parameters["filename*"], let decoded = decodeExtendedValue(extended) {
            filename = decoded
        }
        return MultipartPart(name: name, filename: filename, contentType: headers["Content-Type"], headers: headers, body: body)
    }

    /// RFC 8187 `UTF-8''percent%20encoded` values; other charsets are not decoded.
    private static func decodeExtendedValue(_ value: String) -> String? {
        let pieces = value.split(separator: "'", maxSplits: 2, omittingEmptySubsequences: false)
        guard pieces.count == 3, pieces[0].lowercased() == "utf-8" else { return nil }
        return QueryString.percentDecode(pieces[2])
    }

    /// `type/subtype; name=value; name="quoted \" value"` → lowercased type and parameters (names lowercased).
    /// Nil when the syntax is broken (an unterminated quote, a parameter without '=').
    static func parseParameterized(_ s: Substring) -> (String, [String: String])? {
        let bytes = Array(s.utf8)
        var i = 0
        func skipOWS() { while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 } }
        skipOWS()
        let valueStart = i
        while i < bytes.count, bytes[i] != UInt8(ascii: ";") { i += 1 }
        let value = trimOWS(Substring(String(decoding: bytes[valueStart..<i], as: UTF8.self))).lowercased()
        guard !value.isEmpty else { return nil }
        var parameters: [String: String] = [:]
        while i < bytes.count {
            i += 1  // the ';'
            skipOWS()
            if i == bytes.count { break }
            let nameStart = i
            while i < bytes.count, isTokenByte(bytes[i]) { i += 1 }
            guard i > nameStart, i < bytes.count, bytes[i] == UInt8(ascii: "=") else { return nil }
            let name = String(decoding: bytes[nameStart..<i], as: UTF8.self).lowercased()
            i += 1
            var parameterValue: [UInt8] = []
            if i < bytes.count, bytes[i] == UInt8(ascii: "\"") {
                i += 1
                var closed = false
                while i < bytes.count {
                    let b = bytes[i]
                    if b == UInt8(ascii: "\\"), i + 1 < bytes.count {
                        parameterValue.append(bytes[i + 1])
                        i += 2
                    } else if b == UInt8(ascii: "\"") {
                        i += 1
                        closed = true
                        break
                    } else {
                        parameterValue.append(b)
                        i += 1
                    }
                }
                guard closed else { return nil }
            } else {
                while i < bytes.count, bytes[i] != UInt8(ascii: ";"), bytes[i] != 0x20, bytes[i] != 0x09 {
                    parameterValue.append(bytes[i])
                    i += 1
                }
            }
            skipOWS()
            guard i == bytes.count || bytes[i] == UInt8(ascii: ";") else { return nil }
            if parameters[name] == nil { parameters[name] = String(decoding: parameterValue, as: UTF8.self) }
        }
        return (value, parameters)
    }

    private static func matches(_ p: UnsafeBufferPointer<UInt8>, at i: Int, _ needle: [UInt8]) -> Bool {
        guard i + needle.count <= p.count else { return false }
        for k in 0..<needle.count where p[i + k] != needle[k] { return false }
        return true
    }

    /// First index of `needle` in `p` at or after `from`. The needles start with CR and their other bytes are
    /// never CR, so a partial match of length L rules out the next L positions: linear time on any input.
    private static func find(_ needle: [UInt8], in p: UnsafeBufferPointer<UInt8>, from: Int) -> Int? {
        guard let base = p.baseAddress else { return nil }
        var i = from
        while i + needle.count <= p.count {
            guard let hit = memchr(base + i, Int32(needle[0]), p.count - i) else { return nil }
            let j = UnsafeRawPointer(base).distance(to: UnsafeRawPointer(hit))
            if j + needle.count > p.count { return nil }
            var k = 1
            while k < needle.count, p[j + k] == needle[k] { k += 1 }
            if k == needle.count { return j }
            i = j + 1
        }
        return nil
    }
}
