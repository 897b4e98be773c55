// The parser alone: framing, limits and the refusals that keep requests from being smuggled.
import HTTPCore
import Testing

/// Feeds `text` (optionally in pieces of `split` bytes) and collects complete requests, or the error.
private func parse(_ text: String, limits: HTTPParser.Limits = .init(), split: Int? = nil) -> (requests: [(HTTPRequestHead, [UInt8])], error: HTTPParseError?) {
    var parser = HTTPParser(limits: limits)
    var requests: [(HTTPRequestHead, [UInt8])] = []
    let bytes = Array(text.utf8)
    let step = split ?? max(1, bytes.count)
    var offset = 0
    do {
        repeat {
            let end = min(bytes.count, offset + step)
            parser.append(contentsOf: bytes[offset..<end])
            offset = end
            while let event = try parser.next() {
                if case .request(let head, let body) = event { requests.append((head, body)) }
            }
        } while offset < bytes.count
    } catch {
        return (requests, error)
    }
    return (requests, nil)
}

@Suite struct HTTPParserTests {
    @Test func simpleGet() throws {
        let (requests, error) = parse("GET /a/b?x=1 HTTP/1.1\r\nHost: h\r\nX-Thing:  v  \r\n\r\n")
        #expect(error == nil)
        let (head, body) = try #require(requests.first)
        #expect(head.method == .get)
        #expect(head.target == "/a/b?x=1")
        #expect(head.version == .http1_1)
        #expect(head.headers["x-thing"] == "v")
        #expect(head.keepAlive)
        #expect(head.framing == .none)
        #expect(body.isEmpty)
    }

    @Test(arguments: [1, 2, 3, 7, 1000])
    func byteByByteGivesTheSameResult(split: Int) throws {
        let text = "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer: t\r\n\r\n"
            + "GET /next HTTP/1.1\r\nHost: h\r\n\r\n"
        let (requests, error) = parse(text, split: split)
        #expect(error == nil)
        #expect(requests.count == 2)
        #expect(String(decoding: requests[0].1, as: UTF8.self) == "hello world")
        #expect(requests[0].0.framing == .chunked)
        #expect(requests[1].0.target == "/next")
    }

    @Test func repeatedHeadersKeepOrderAndCase() throws {
        let (requests, _) = parse("GET / HTTP/1.1\r\nHost: h\r\nAccept: a\r\naccept: b\r\nACCEPT: c, d\r\n\r\n")
        let head = try #require(requests.first?.0)
        #expect(head.headers.values(for: "Accept") == ["a", "b", "c, d"])
        #expect(head.headers.listValues(for: "accept") == ["a", "b", "c", "d"])
    }

    @Test func contentLengthBodyAndLeadingEmptyLines() throws {
        let (requests, error) = parse("\r\n\r\nPOST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET")
        #expect(error == nil)
        #expect(requests.count == 1)
        #expect(requests.first?.1 == Array("abc".utf8))
    }

    @Test func identicalDuplicateContentLengthsAreOne() {
        let (requests, error) = parse("POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok")
        #expect(error == nil)
        #expect(requests.first?.1 == Array("ok".utf8))
    }

    @Test func http10KeepAliveAndClose() throws {
        let a = try #require(parse("GET / HTTP/1.0\r\n\r\n").requests.first?.0)
        #expect(!a.keepAlive)
        let b = try #require(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").requests.first?.0)
        #expect(b.keepAlive)
        let c = try #require(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: upgrade, close\r\n\r\n").requests.first?.0)
        #expect(!c.keepAlive)
    }

    @Test func expectContinue() throws {
        let head = try #require(parse("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\nx").requests.first?.0)
        #expect(head.expectContinue)
        #expect(parse("POST / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n").error?.status == .expectationFailed)
    }

    @Test(arguments: [
        // (request, status, code)
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "ambiguous_framing"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400, "ambiguous_framing"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400, "conflicting_content_length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 4\r\n\r\n", 400, "conflicting_content_length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n", 400, "invalid_content_length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n", 400, "invalid_content_length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", 400, "invalid_content_length"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "invalid_transfer_encoding"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501, "unsupported_transfer_encoding"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501, "unsupported_transfer_encoding"),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "invalid_transfer_encoding"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "invalid_chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n", 400, "invalid_chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", 400, "invalid_chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n", 400, "invalid_chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3 x\r\n", 400, "invalid_chunk"),
        ("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", 413, "body_too_large"),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n c\r\n\r\n", 400, "obsolete_line_folding"),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: b\r\n\tc\r\n\r\n", 400, "obsolete_line_folding"),
        ("GET / HTTP/1.1\r\nHost : h\r\n\r\n", 400, "invalid_header"),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\u{01}b\r\n\r\n", 400, "invalid_header"),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", 400, "invalid_header"),
        ("GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nX-B: b\r\n\r\n", 400, "invalid_line_ending"),
        ("GET / HTTP/1.1\nHost: h\n\n", 400, "invalid_line_ending"),
        ("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid_line_ending"),
        ("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", 400, "invalid_header"),
        ("GET / HTTP/1.1\r\n\r\n", 400, "missing_host"),
        ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "invalid_host"),
        ("GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid_request_line"),
        ("GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 400, "invalid_request_line"),
        ("GET / http/1.1\r\nHost: h\r\n\r\n", 400, "invalid_request_line"),
        ("G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid_request_line"),
        ("GET noslash HTTP/1.1\r\nHost: h\r\n\r\n", 400, "invalid_target"),
        ("GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505, "http_version_not_supported"),
        ("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413, "body_too_large"),
    ])
    func refusals(request: String, status: Int, code: String) {
        let (requests, error) = parse(request)
        #expect(requests.isEmpty)
        #expect(error?.status.code == status, "\(request.debugDescription)")
        #expect(error?.code == code, "\(request.debugDescription)")
    }

    /// Found by the fuzzer: limits and leading empty lines must not depend on how the bytes arrive.
    @Test(arguments: [
        "\r\n\r GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        String(repeating: "M", count: 61) + " / HTTP/1.1\r\nHost: h\r\n\r\n",  // request line exactly at its limit (8 + 64)
        String(repeating: "M", count: 62) + " / HTTP/1.1\r\nHost: h\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1;" + String(repeating: "e", count: 1022) + "\r\nx\r\n0\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\nX: " + String(repeating: "v", count: 50) + "\r\n\r\n",
    ])
    func splitReadsDoNotChangeTheResult(text: String) {
        var limits = HTTPParser.Limits()
        limits.maxURIBytes = 8  // request line limit: 8 + 64 bytes
        limits.maxHeaderBytes = 64
        let whole = parse(text, limits: limits)
        let split = parse(text, limits: limits, split: 1)
        #expect(whole.error?.code == split.error?.code)
        #expect(whole.requests.map(\.1) == split.requests.map(\.1))
    }

    @Test func errorIsSticky() throws {
        var parser = HTTPParser()
        parser.append(contentsOf: Array("GET / HTTP/1.1\r\nHost : h\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n".utf8))
        #expect(throws: HTTPParseError.self) { try parser.next() }
        #expect(throws: HTTPParseError.self) { try parser.next() }
    }

    @Test func limitsGiveTheirStatuses() {
        var limits = HTTPParser.Limits()
        limits.maxURIBytes = 32
        limits.maxHeaderBytes = 64
        limits.maxHeaderCount = 3
        limits.maxBodyBytes = 10
        let longURI = "GET /" + String(repeating: "a", count: 40) + " HTTP/1.1\r\nHost: h\r\n\r\n"
        #expect(parse(longURI, limits: limits).error?.status == .uriTooLong)
        // Refused before the line ends, while it is still arriving.
        #expect(parse("GET /" + String(repeating: "a", count: 200), limits: limits).error?.status == .uriTooLong)
        let bigHeader = "GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + String(repeating: "b", count: 100) + "\r\n\r\n"
        #expect(parse(bigHeader, limits: limits).error?.status == .requestHeaderFieldsTooLarge)
        #expect(parse("GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + String(repeating: "b", count: 100), limits: limits).error?.status
                == .requestHeaderFieldsTooLarge)
        #expect(parse("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: limits).error?.code == "too_many_headers")
        let declared = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", limits: limits)
        #expect(declared.error?.status == .contentTooLarge)
        let chunked = parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\n", limits: limits)
        #expect(chunked.error?.status == .contentTooLarge)
        #expect(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n0123456789", limits: limits).error == nil)
    }

    @Test func idleAndReadingHeadStates() throws {
        var parser = HTTPParser()
        #expect(parser.isIdle)
        parser.append(contentsOf: Array("GET / HT".utf8))
        #expect(try parser.next() == nil)
        #expect(!parser.isIdle)
        #expect(parser.isReadingHead)
        parser.append(contentsOf: Array("TP/1.1\r\nHost: h\r\n\r\n".utf8))
        guard case .head = try parser.next() else { Issue.record("expected head"); return }
        guard case .request = try parser.next() else { Issue.record("expected request"); return }
        #expect(parser.isIdle)
    }
}
