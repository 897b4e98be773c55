// libFuzzer entry point for the request parser, the multipart parser and query decoding.
// Built with the HTTPServer sources that do no I/O by tools/fuzz-http.sh; crashes and broken invariants abort.
//
// Input layout: byte 0 picks the target, byte 1 the size of the pieces the parser is fed, the rest is the payload.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size >= 2 else { return 0 }
    let payload = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))
    switch data[0] % 3 {
    case 0: fuzzParser(payload, piece: Int(data[1] % 17))
    case 1: fuzzMultipart(payload)
    default: fuzzQuery(payload)
    }
    return 0
}

private struct Outcome: Equatable {
    var requests: [String] = []
    var error: String?
}

/// Small limits, so the fuzzer reaches every limit quickly.
private let limits: HTTPParser.Limits = {
    var l = HTTPParser.Limits()
    l.maxURIBytes = 64
    l.maxHeaderBytes = 256
    l.maxHeaderCount = 8
    l.maxBodyBytes = 512
    l.maxChunkLineBytes = 32
    return l
}()

private func run(_ bytes: [UInt8], piece: Int) -> Outcome {
    var parser = HTTPParser(limits: limits)
    var outcome = Outcome()
    var offset = 0
    let step = piece == 0 ? max(1, bytes.count) : piece
    repeat {
        let end = min(bytes.count, offset + step)
        parser.append(contentsOf: bytes[offset..<end])
        offset = end
        do {
            while let event = try parser.next() {
                if case .request(let head, let body) = event {
                    check(body.count <= limits.maxBodyBytes, "body over the limit")
                    if case .length(let n) = head.framing { check(body.count == n, "body length differs from Content-Length") }
                    outcome.requests.append("\(head.method) \(head.target) \(head.version) \(head.headers.count) \(body)")
                }
            }
        } catch {
            outcome.error = error.code
            // An error is final: the parser must refuse to go on.
            check((try? parser.next()) == nil, "parser continued after an error")
            return outcome
        }
    } while offset < bytes.count
    return outcome
}

/// Property: how the bytes are split into reads never changes what is parsed.
private func fuzzParser(_ bytes: [UInt8], piece: Int) {
    let whole = run(bytes, piece: 0)
    let split = run(bytes, piece: piece)
    check(whole == split, "split reads changed the result: \(whole) vs \(split)")
}

/// The first line is the Content-Type, the rest the body.
private func fuzzMultipart(_ bytes: [UInt8]) {
    let newline = bytes.firstIndex(of: 0x0A) ?? bytes.count
    let contentType = String(decoding: bytes[0..<newline], as: UTF8.self)
    let body = newline < bytes.count ? Array(bytes[(newline + 1)...]) : []
    do {
        let parts = try Multipart.parse(body: body, contentType: contentType)
        check(parts.reduce(0) { $0 + $1.body.count } <= body.count, "parts larger than the body")
    } catch {
        check(error.status.code == 400 || error.status.code == 415, "unexpected status \(error.status)")
    }
}

private func fuzzQuery(_ bytes: [UInt8]) {
    let text = String(decoding: bytes, as: UTF8.self)
    if let items = QueryString.parse(text) {
        check(items.count <= text.utf8.count + 1, "more items than bytes")
    }
    _ = HTTPRequest.split(target: text)
}

/// Like precondition, but the message survives -O, so a finding says which invariant broke.
private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}
