// libFuzzer entry point for the Open Inference Protocol request decoder (InferenceProtocolDecoder, JSON and
// binary tensor data). Built with InferenceProtocolRequest.swift and HTTPCore's sources by tools/fuzz-oip.sh;
// crashes and broken invariants abort.
//
// Input layout: the first line is the Inference-Header-Content-Length value (an empty line: no such header),
// the rest is the request body. The first byte's low bit picks the Content-Type (JSON or octet-stream).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let newline = bytes.firstIndex(of: 0x0A) ?? bytes.count
    let headerLine = String(decoding: bytes[0..<newline], as: UTF8.self)
    let body = newline < bytes.count ? Array(bytes[(newline + 1)...]) : []
    let headerLength: String? = headerLine.isEmpty ? nil : headerLine
    let contentType = (bytes.first ?? 0) & 1 == 0 ? "application/json" : "application/octet-stream"

    let first = Result { () throws(HTTPError) in
        try InferenceProtocolDecoder.decode(body: body, headerLength: headerLength, contentType: contentType)
    }
    switch first {
    case .success(let request):
        check(!request.inputs.isEmpty, "a request without inputs was accepted")
        for input in request.inputs {
            check(input.shape.allSatisfy { $0 >= 0 }, "negative dimension in \(input.shape)")
            let elements = input.shape.reduce(1) { $0 * $1 }
            check(input.data.elementCount == elements, "input \(input.name): \(input.data.elementCount) elements for shape \(input.shape)")
            if case .bytes(let items) = input.data {
                check(items.reduce(0) { $0 + $1.count } <= body.count, "BYTES elements larger than the body")
            }
        }
        if let timeout = request.timeoutMilliseconds { check(timeout > 0, "timeout_ms \(timeout) accepted") }
    case .failure(let error):
        check(error.status.code == 400 || error.status.code == 415, "status \(error.status.code) for a bad request: \(error)")
        check(!error.message.isEmpty && !error.code.isEmpty, "an error without code or message")
    }
    // The decoder is a pure function of its input.
    let second = Result { () throws(HTTPError) in
        try InferenceProtocolDecoder.decode(body: body, headerLength: headerLength, contentType: contentType)
    }
    switch (first, second) {
    case (.success(let a), .success(let b)): check(identical(a, b), "two decodes differ")
    case (.failure(let a), .failure(let b)): check(a == b, "two errors differ: \(a) vs \(b)")
    default: check(false, "one decode failed, the other did not")
    }
    return 0
}

/// Equal, with FP32 values compared bit for bit (a NaN in binary data is not equal to itself).
private func identical(_ a: InferenceRequest, _ b: InferenceRequest) -> Bool {
    func bits(_ request: InferenceRequest) -> InferenceRequest {
        var copy = request
        for i in copy.inputs.indices {
            if case .fp32(let values) = copy.inputs[i].data {
                copy.inputs[i].data = .bytes([values.flatMap { withUnsafeBytes(of: $0.bitPattern) { Array($0) } }])
            }
        }
        return copy
    }
    return bits(a) == bits(b)
}

/// Like precondition, but the message survives -O, so a finding says which invariant broke.
private func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}
