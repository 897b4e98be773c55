// An incremental HTTP/1.1 request parser (RFC 9112), strict where leniency enables request smuggling.
// It does no I/O: bytes go in with `append`, events come out of `next()`, so it can be unit-tested and fuzzed alone.

/// How the length of a request body is known (RFC 9112 §6.3).
public enum HTTPBodyFraming: Sendable, Equatable {
    case none
    case length(Int)
    case chunked
}

/// A request's line and header section, validated.
public struct HTTPRequestHead: Sendable {
    public var method: HTTPMethod
    /// The request-target as sent (origin-form "/path?query" in practice).
    public var target: String
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    /// True unless the client asked to close (or spoke HTTP/1.0 without `Connection: keep-alive`).
    public var keepAlive: Bool
    /// The client sent `Expect: 100-continue` and waits for an interim response before the body.
    public var expectContinue: Bool
    public var framing: HTTPBodyFraming
}

/// Why a request was refused: the status to answer with, a snake_case code and a sentence.
/// After any parse error the connection must be closed, since the message boundaries are lost.
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public let status: HTTPStatus
    public let code: String
    public let message: String
    /// The method, target and header fields, when they had been read before the error (for logs and X-Request-Id).
    public var method: String?
    public var target: String?
    public var headers: HTTPHeaders?

    public init(_ status: HTTPStatus, _ code: String, _ message: String) {
        self.status = status
        self.code = code
        self.message = message
    }
    public var description: String { "\(status.code) \(code): \(message)" }

    /// Errors are equal when they say the same thing; the context they carry does not count.
    public static func == (a: HTTPParseError, b: HTTPParseError) -> Bool {
        a.status == b.status && a.code == b.code && a.message == b.message
    }
}

public struct HTTPParser: Sendable {
    /// Size limits; each one breached gets its own status.
    public struct Limits: Sendable, Equatable {
        /// Longest request-target (414).
        public var maxURIBytes: Int = 8 * 1024
        /// Largest header section, field lines only (431). Also bounds chunked trailers.
        public var maxHeaderBytes: Int = 16 * 1024
        /// Most header fields (431).
        public var maxHeaderCount: Int = 100
        /// Largest body, whether declared by Content-Length or summed over chunks (413).
        public var maxBodyBytes: Int = 20 * 1024 * 1024
        /// Longest chunk-size line including extensions (400).
        public var maxChunkLineBytes: Int = 1024
        public init() {}
    }

    public enum Event: Sendable {
        /// The head is complete; the body (if any) follows. Always precedes `.request`.
        case head(HTTPRequestHead)
        /// The whole request, body included.
        case request(HTTPRequestHead, body: [UInt8])
    }

    private enum State {
        case head(scanFrom: Int, requestLineEnd: Int?)
        case headDone
        case fixedBody(remaining: Int)
        case chunkSize
        case chunkData(remaining: Int)
        case chunkDataEnd
        case trailers(bytes: Int)
        case failed(HTTPParseError)
    }

    public let limits: Limits
    private var buffer: [UInt8] = []
    private var start = 0
    private var state: State = .head(scanFrom: 0, requestLineEnd: nil)
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    public init(limits: Limits = Limits()) { self.limits = limits }

    /// Bytes received and not yet consumed by a complete event.
    public var bufferedByteCount: Int { buffer.count - start }

    /// True when nothing of a next request has been received: the connection is idle.
    public var isIdle: Bool {
        if case .head = state { return bufferedByteCount == 0 }
        return false
    }

    /// True while the head of a request is being received (the header-read timeout applies).
    public var isReadingHead: Bool {
        if case .head = state { return bufferedByteCount > 0 }
        return false
    }

    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        buffer.append(contentsOf: bytes)
    }

    public mutating func append<S: Sequence>(contentsOf bytes: S) where S.Element == UInt8 {
        buffer.append(contentsOf: bytes)
    }

    /// The next event the buffered bytes allow, or nil when more bytes are needed.
    public mutating func next() throws(HTTPParseError) -> Event? {
        do {
            return try step()
        } catch {
            state = .failed(error)
            throw error
        }
    }

    private mutating func step() throws(HTTPParseError) -> Event? {
        while true {
            switch state {
            case .failed(let error):
                throw error
            case .head(let scanFrom, let requestLineEnd):
                guard let parsed = try scanHead(scanFrom: scanFrom, requestLineEnd: requestLineEnd) else { return nil }
                head = parsed
                state = .headDone
                return .head(parsed)
            case .headDone:
                switch head!.framing {
                case .none, .length(0):
                    return finishMessage()
                case .length(let n):
                    body.reserveCapacity(min(n, 64 * 1024))  // declared lengths are not trusted with memory
                    state = .fixedBody(remaining: n)
                case .chunked:
                    state = .chunkSize
                }
            case .fixedBody(let remaining):
                let n = min(remaining, bufferedByteCount)
                if n > 0 {
                    body.append(contentsOf: buffer[start..<start + n])
                    start += n
                }
                if remaining - n == 0 { return finishMessage() }
                state = .fixedBody(remaining: remaining - n)
                compactIfUseful()
                return nil
            case .chunkSize:
                guard let lineEnd = findCRLF(from: start) else {
                    if bufferedByteCount > limits.maxChunkLineBytes + 1 {  // + 1: a trailing CR may start the CRLF
                        throw HTTPParseError(.badRequest, "invalid_chunk", "A chunk-size line is longer than \(limits.maxChunkLineBytes) bytes.")
                    }
                    return nil
                }
                if lineEnd - start > limits.maxChunkLineBytes {
                    throw HTTPParseError(.badRequest, "invalid_chunk", "A chunk-size line is longer than \(limits.maxChunkLineBytes) bytes.")
                }
                let size = try parseChunkSize(start, lineEnd)
                start = lineEnd + 2
                if size == 0 {
                    state = .trailers(bytes: 0)
                } else {
                    if size > limits.maxBodyBytes - body.count {
                        throw HTTPParseError(.contentTooLarge, "body_too_large",
                                             "The chunked request body exceeds the limit of \(limits.maxBodyBytes) bytes.")
                    }
                    state = .chunkData(remaining: size)
                }
            case .chunkData(let remaining):
                let n = min(remaining, bufferedByteCount)
                if n > 0 {
                    body.append(contentsOf: buffer[start..<start + n])
                    start += n
                }
                if remaining - n > 0 {
                    state = .chunkData(remaining: remaining - n)
                    compactIfUseful()
                    return nil
                }
                state = .chunkDataEnd
            case .chunkDataEnd:
                guard bufferedByteCount >= 2 else { return nil }
                guard buffer[start] == 0x0D, buffer[start + 1] == 0x0A else {
                    throw HTTPParseError(.badRequest, "invalid_chunk", "Chunk data is not followed by CRLF; the chunk size is wrong.")
                }
                start += 2
                state = .chunkSize
            case .trailers(let bytes):
                guard let lineEnd = findCRLF(from: start) else {
                    if bytes + bufferedByteCount > limits.maxHeaderBytes + 1 {
                        throw HTTPParseError(.requestHeaderFieldsTooLarge, "trailers_too_large",
                                             "The chunked trailer section exceeds \(limits.maxHeaderBytes) bytes.")
                    }
                    return nil
                }
                let length = lineEnd - start
                if length == 0 {
                    start += 2
                    return finishMessage()
                }
                if bytes + length > limits.maxHeaderBytes {
                    throw HTTPParseError(.requestHeaderFieldsTooLarge, "trailers_too_large",
                                         "The chunked trailer section exceeds \(limits.maxHeaderBytes) bytes.")
                }
                _ = try buffer.withUnsafeBufferPointer { p throws(HTTPParseError) in
                    try Self.parseField(UnsafeBufferPointer(rebasing: p[start..<lineEnd]))
                }  // trailers are validated, then dropped: nothing downstream reads them
                start = lineEnd + 2
                state = .trailers(bytes: bytes + length + 2)
            }
        }
    }

    private mutating func finishMessage() -> Event {
        let message = Event.request(head!, body: body)
        head = nil
        body = []
        state = .head(scanFrom: 0, requestLineEnd: nil)
        compactIfUseful()
        return message
    }

    private mutating func compactIfUseful() {
        if start == buffer.count {
            // An idle keep-alive connection keeps at most 4 KiB: a thousand of them must cost little.
            buffer.removeAll(keepingCapacity: buffer.capacity <= 4 * 1024)
            start = 0
        } else if start > 4096 && start > buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
    }

    private func findCRLF(from: Int) -> Int? {
        buffer.withUnsafeBufferPointer { p in
            var i = from
            while i + 1 < p.count {
                if p[i] == 0x0D && p[i + 1] == 0x0A { return i }
                i += 1
            }
            return nil
        }
    }

    // MARK: - Head

    /// Finds the end of the head; checks the limits on what has arrived so far; parses once complete.
    private mutating func scanHead(scanFrom: Int, requestLineEnd: Int?) throws(HTTPParseError) -> HTTPRequestHead? {
        // RFC 9112 §2.2: ignore empty lines received before a request-line.
        var scanFrom = scanFrom
        if requestLineEnd == nil {
            let before = start
            while bufferedByteCount >= 2, buffer[start] == 0x0D, buffer[start + 1] == 0x0A { start += 2 }
            if start != before { scanFrom = 0 }
            if bufferedByteCount == 0 { compactIfUseful(); return nil }
        }
        let base = start
        let (end, lineEnd, bareLF) = buffer.withUnsafeBufferPointer { p -> (Int?, Int?, Int?) in
            var lineEnd = requestLineEnd
            var i = max(base + scanFrom, base)
            while i < p.count {
                if p[i] == 0x0A {
                    // A LF without its CR: lenient parsers split lines differently, which is how smuggling starts.
                    guard i > base, p[i - 1] == 0x0D else { return (nil, lineEnd, i) }
                    if lineEnd == nil { lineEnd = i - 1 }
                    if i - base >= 3 && p[i - 2] == 0x0A && p[i - 3] == 0x0D { return (i + 1, lineEnd, nil) }
                }
                i += 1
            }
            return (nil, lineEnd, nil)
        }
        let requestLineLimit = limits.maxURIBytes + 64  // method, spaces and version around the target
        if let bareLF {
            try checkIncompleteHead(received: bareLF - base, base: base, lineEnd: lineEnd)  // same answer however bytes arrive
            throw HTTPParseError(.badRequest, "invalid_line_ending", "Header lines must end with CRLF; a bare LF was received.")
        }
        guard let end else {
            try checkIncompleteHead(received: bufferedByteCount, base: base, lineEnd: lineEnd)
            state = .head(scanFrom: max(0, bufferedByteCount - 3), requestLineEnd: lineEnd)
            return nil
        }
        let lineEndIndex = lineEnd!
        // The same checks as while incomplete, so how the bytes arrive never changes the answer.
        if lineEndIndex - base > requestLineLimit { throw uriTooLong() }
        if (end - 2) - (lineEndIndex + 2) > limits.maxHeaderBytes { throw headerTooLarge() }
        let head = try buffer.withUnsafeBufferPointer { p throws(HTTPParseError) in
            try parseHead(p, from: base, requestLineEnd: lineEndIndex, end: end)
        }
        start = end
        return head
    }

    /// Limits on a head still arriving. A trailing CR may yet start a terminator, so only what is over for sure is refused.
    private func checkIncompleteHead(received: Int, base: Int, lineEnd: Int?) throws(HTTPParseError) {
        let requestLineLimit = limits.maxURIBytes + 64
        if let lineEnd {
            if lineEnd - base > requestLineLimit { throw uriTooLong() }
            if received - (lineEnd - base + 2) > limits.maxHeaderBytes + 1 { throw headerTooLarge() }
        } else if received > requestLineLimit + 1 {
            throw uriTooLong()
        }
    }

    private func uriTooLong() -> HTTPParseError {
        HTTPParseError(.uriTooLong, "uri_too_long", "The request line is longer than the limit of \(limits.maxURIBytes) bytes for the target.")
    }

    private func headerTooLarge() -> HTTPParseError {
        HTTPParseError(.requestHeaderFieldsTooLarge, "header_too_large",
                       "The header section is larger than the limit of \(limits.maxHeaderBytes) bytes.")
    }

    private func parseHead(_ p: UnsafeBufferPointer<UInt8>, from base: Int, requestLineEnd: Int, end: Int) throws(HTTPParseError) -> HTTPRequestHead {
        let (method, target, version) = try parseRequestLine(UnsafeBufferPointer(rebasing: p[base..<requestLineEnd]))
        var headers = HTTPHeaders()
        do throws(HTTPParseError) {
            var lineStart = requestLineEnd + 2
            let sectionEnd = end - 2  // the final CRLF
            while lineStart < sectionEnd {
                var lineEnd = lineStart
                while !(p[lineEnd] == 0x0D && p[lineEnd + 1] == 0x0A) { lineEnd += 1 }
                let (name, value) = try Self.parseField(UnsafeBufferPointer(rebasing: p[lineStart..<lineEnd]))
                headers.add(name, value)
                if headers.count > limits.maxHeaderCount {
                    throw HTTPParseError(.requestHeaderFieldsTooLarge, "too_many_headers",
                                         "The request has more than \(limits.maxHeaderCount) header fields.")
                }
                lineStart = lineEnd + 2
            }
            return try interpret(method: method, target: target, version: version, headers: headers)
        } catch {
            var error = error
            error.method = method.rawValue
            error.target = target
            error.headers = headers
            throw error
        }
    }

    private func parseRequestLine(_ line: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> (HTTPMethod, String, HTTPVersion) {
        let bad = HTTPParseError(.badRequest, "invalid_request_line", "The request line is not 'METHOD target HTTP/1.1'.")
        var i = 0
        while i < line.count, isTokenByte(line[i]) { i += 1 }
        guard i > 0, i < line.count, line[i] == 0x20 else { throw bad }
        let method = HTTPMethod(String(decoding: UnsafeBufferPointer(rebasing: line[0..<i]), as: UTF8.self))
        let targetStart = i + 1
        var j = targetStart
        while j < line.count, line[j] > 0x20, line[j] < 0x7F { j += 1 }
        if j - targetStart > limits.maxURIBytes { throw uriTooLong() }
        guard j > targetStart, j < line.count, line[j] == 0x20 else { throw bad }
        let target = String(decoding: UnsafeBufferPointer(rebasing: line[targetStart..<j]), as: UTF8.self)
        let v = UnsafeBufferPointer(rebasing: line[(j + 1)...])
        guard v.count == 8, v[0] == 0x48, v[1] == 0x54, v[2] == 0x54, v[3] == 0x50, v[4] == 0x2F, v[6] == 0x2E,
              (0x30...0x39).contains(v[5]), (0x30...0x39).contains(v[7]) else { throw bad }
        let version = HTTPVersion(major: Int(v[5] - 0x30), minor: Int(v[7] - 0x30))
        guard version.major == 1 else {
            throw HTTPParseError(.httpVersionNotSupported, "http_version_not_supported", "Only HTTP/1.0 and HTTP/1.1 are supported, not \(version).")
        }
        guard target.utf8.first == UInt8(ascii: "/") || target.hasPrefix("http://") || target.hasPrefix("https://")
                || (target == "*" && method == .options) else {
            throw HTTPParseError(.badRequest, "invalid_target", "The request target must be an absolute path such as /v1/models.")
        }
        return (method, target, version)
    }

    /// One field line: `name ":" OWS value OWS`. Leading whitespace is obsolete line folding, refused.
    static func parseField(_ line: UnsafeBufferPointer<UInt8>) throws(HTTPParseError) -> (String, String) {
        guard let first = line.first else {
            throw HTTPParseError(.badRequest, "invalid_header", "A header line is empty.")
        }
        if first == 0x20 || first == 0x09 {
            throw HTTPParseError(.badRequest, "obsolete_line_folding", "Header values folded over several lines (obs-fold) are not accepted.")
        }
        var colon = 0
        while colon < line.count, isTokenByte(line[colon]) { colon += 1 }
        guard colon > 0, colon < line.count, line[colon] == UInt8(ascii: ":") else {
            throw HTTPParseError(.badRequest, "invalid_header", "A header line is not 'Name: value' (no whitespace is allowed before the colon).")
        }
        var vs = colon + 1, ve = line.count
        while vs < ve, line[vs] == 0x20 || line[vs] == 0x09 { vs += 1 }
        while ve > vs, line[ve - 1] == 0x20 || line[ve - 1] == 0x09 { ve -= 1 }
        for k in vs..<ve where !isFieldValueByte(line[k]) {
            throw HTTPParseError(.badRequest, "invalid_header", "A header value contains a control character.")
        }
        return (String(decoding: UnsafeBufferPointer(rebasing: line[0..<colon]), as: UTF8.self),
                String(decoding: UnsafeBufferPointer(rebasing: line[vs..<ve]), as: UTF8.self))
    }

    /// Framing, persistence and expectations from the header fields (RFC 9112 §6, §9.3; RFC 9110 §10.1.1).
    private func interpret(method: HTTPMethod, target: String, version: HTTPVersion, headers: HTTPHeaders) throws(HTTPParseError) -> HTTPRequestHead {
        let hosts = headers.values(for: "Host")
        if hosts.count > 1 {
            throw HTTPParseError(.badRequest, "invalid_host", "The request has more than one Host header.")
        }
        if version == .http1_1 && hosts.isEmpty {
            throw HTTPParseError(.badRequest, "missing_host", "An HTTP/1.1 request must carry a Host header.")
        }

        var framing = HTTPBodyFraming.none
        let hasTE = headers.contains("Transfer-Encoding")
        let lengths = headers.values(for: "Content-Length")
        if hasTE {
            if !lengths.isEmpty {
                throw HTTPParseError(.badRequest, "ambiguous_framing", "A request may not carry both Content-Length and Transfer-Encoding.")
            }
            if version == .http1_0 {
                throw HTTPParseError(.badRequest, "invalid_transfer_encoding", "Transfer-Encoding is not allowed in an HTTP/1.0 request.")
            }
            let codings = headers.listValues(for: "Transfer-Encoding")
            guard let last = codings.last, HTTPHeaders.namesEqual(last, "chunked") else {
                throw HTTPParseError(.badRequest, "invalid_transfer_encoding", "Transfer-Encoding must end with 'chunked'.")
            }
            guard codings.count == 1 else {
                throw HTTPParseError(.notImplemented, "unsupported_transfer_encoding", "Only Transfer-Encoding: chunked is supported.")
            }
            framing = .chunked
        } else if !lengths.isEmpty {
            var declared: Int?
            for field in lengths {
                for element in field.split(separator: ",", omittingEmptySubsequences: false) {
                    let digits = trimOWS(element)
                    guard !digits.isEmpty, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) }) else {
                        throw HTTPParseError(.badRequest, "invalid_content_length", "Content-Length must be a decimal number of bytes.")
                    }
                    // Too many digits to be a size we would read: as good as over the limit.
                    let value = digits.utf8.count > 18 ? Int.max : Int(digits)!
                    if let d = declared, d != value {
                        throw HTTPParseError(.badRequest, "conflicting_content_length", "The request carries differing Content-Length values.")
                    }
                    declared = value
                }
            }
            let length = declared!
            if length > limits.maxBodyBytes {
                throw HTTPParseError(.contentTooLarge, "body_too_large",
                                     "The request body of \(length == Int.max ? "more than 10^18" : String(length)) bytes exceeds the limit of \(limits.maxBodyBytes) bytes.")
            }
            framing = .length(length)
        }

        var keepAlive = version == .http1_1
        for token in headers.listValues(for: "Connection") {
            if HTTPHeaders.namesEqual(token, "close") { keepAlive = false; break }
            if HTTPHeaders.namesEqual(token, "keep-alive") { keepAlive = true }
        }

        var expectContinue = false
        if let expect = headers["Expect"] {
            guard HTTPHeaders.namesEqual(expect, "100-continue") else {
                throw HTTPParseError(.expectationFailed, "expectation_failed", "Only 'Expect: 100-continue' is supported.")
            }
            expectContinue = version == .http1_1
        }
        return HTTPRequestHead(method: method, target: target, version: version, headers: headers,
                               keepAlive: keepAlive, expectContinue: expectContinue, framing: framing)
    }

    // MARK: - Chunks

    /// `chunk-size [ BWS ";" chunk-ext ]` — hex digits; extensions are checked for stray bytes and ignored.
    private func parseChunkSize(_ from: Int, _ to: Int) throws(HTTPParseError) -> Int {
        let bad = HTTPParseError(.badRequest, "invalid_chunk", "A chunk size is not a hexadecimal number.")
        var size = 0
        var i = from
        while i < to, let digit = hexValue(buffer[i]) {
            if i - from >= 15 {
                throw HTTPParseError(.contentTooLarge, "body_too_large", "A chunk size is larger than the body limit of \(limits.maxBodyBytes) bytes.")
            }
            size = size << 4 | digit
            i += 1
        }
        guard i > from else { throw bad }
        while i < to, buffer[i] == 0x20 || buffer[i] == 0x09 { i += 1 }
        if i < to {
            guard buffer[i] == UInt8(ascii: ";") else { throw bad }
            for k in i..<to where !isFieldValueByte(buffer[k]) { throw bad }
        }
        return size
    }

    private func hexValue(_ b: UInt8) -> Int? {
        switch b {
        case 0x30...0x39: Int(b - 0x30)
        case 0x41...0x46: Int(b - 0x41 + 10)
        case 0x61...0x66: Int(b - 0x61 + 10)
        default: nil
        }
    }
}
