import CBAMEngine
import CBAMImage
@testable import CBAMService
import Foundation
import HTTPServer
import Logging
#if canImport(Glibc)
import Glibc
#endif

enum Fixtures {
    static let root = Bundle.module.resourceURL!.appendingPathComponent("Fixtures")
    static let modelDirectory = root.appendingPathComponent("model")
    static let modelName = "tiny-cbam-cifar"

    static func image(_ name: String) -> [UInt8] {
        Array(try! Data(contentsOf: root.appendingPathComponent("images").appendingPathComponent(name)))
    }

    static func model() throws -> CBAMModel { try CBAMModel.load(directory: modelDirectory) }

    /// A distinct random picture as a PNG, so many clients can each send their own.
    static func randomPNG(seed: UInt64, width: Int = 40, height: Int = 36) -> [UInt8] {
        var state = seed &* 6364136223846793005 &+ 1442695040888963407
        let pixels = (0..<width * height * 3).map { _ -> UInt8 in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 33)
        }
        return try! PNGEncoder.encode(rgb: pixels, width: width, height: height)
    }
}

/// What the engine itself says about an image, computed in the test without the service, to check responses by.
struct Reference {
    let model: CBAMModel
    let decoder: ImageDecoder
    let preprocessor: Preprocessor

    init() throws {
        model = try Fixtures.model()
        let input = model.config.input
        decoder = ImageDecoder(exifTranspose: input.exifTranspose)
        preprocessor = Preprocessor(size: input.size, resize: input.resize, mean: input.mean, std: input.std)
    }

    func tensor(_ bytes: [UInt8]) throws -> [Float] {
        preprocessor.tensor(try decoder.decode(bytes, targetShorterSide: preprocessor.resize))
    }

    func probabilities(_ bytes: [UInt8]) throws -> [Float] {
        let size = preprocessor.size
        let result = try model.forward(try tensor(bytes), batch: 1, height: size, width: size, attention: false)
        return softmax(result.logits)
    }

    func logits(_ tensor: [Float], batch: Int) throws -> [Float] {
        try model.forward(tensor, batch: batch, height: preprocessor.size, width: preprocessor.size, attention: false).logits
    }
}

/// A service and an HTTP server on a free port of 127.0.0.1.
final class LiveServer: Sendable {
    let service: InferenceService
    let server: HTTPServer
    var port: Int { server.boundPort }

    init(model: CBAMModel? = nil, _ configure: (inout ServiceConfiguration) -> Void = { _ in },
         http configureHTTP: (inout HTTPServer.Configuration) -> Void = { _ in }) throws {
        var configuration = ServiceConfiguration()
        configuration.maxBatchDelay = .milliseconds(2)
        configure(&configuration)
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        service = InferenceService(model: try model ?? Fixtures.model(), configuration: configuration, logger: logger)
        var http = HTTPServer.Configuration(host: "127.0.0.1", port: 0)
        http.accessLogLevel = nil
        http.eventLoops = 2
        configureHTTP(&http)
        server = HTTPServer(configuration: http, router: service.makeRouter(), logger: logger, observer: service.observer)
        try server.start()
    }

    func stop() async {
        await server.shutdown(drainTimeout: .seconds(2))
        await service.shutdown()
    }

    /// Runs `body`, then stops the server and waits for it, whether `body` threw or not: a test's teardown is
    /// awaited, not left to a detached task that may outlive the test.
    func serving(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            await stop()
            throw error
        }
        await stop()
    }

    func request(_ method: String, _ target: String, headers: [(String, String)] = [], body: [UInt8] = [])
        async throws -> TestResponse
    {
        try await TestClient.send(port: port, method: method, target: target, headers: headers, body: body)
    }

    /// The metrics text.
    func metrics() async throws -> String { try await request("GET", "/metrics").text }

    /// Room held in the batching queue for an image that never comes, as if a request were still decoding it:
    /// queued jobs wait for it (up to the batching delay), so a test can keep them queued. Release it to let them run.
    func holdBatches() throws -> Reservation { try service.queue.reserve(imageCount: 1).get() }
}

struct TestResponse: Sendable {
    let status: Int
    let headers: [(String, String)]
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any] else {
            throw TestFailure("not a JSON object: \(text.prefix(200))")
        }
        return object
    }
    /// The error code of either error shape (`{"error": {"code"}}`, or the OIP routes' `{"error": "...", "code"}`).
    var errorCode: String? {
        guard let object = try? json() else { return nil }
        return (object["error"] as? [String: Any])?["code"] as? String ?? object["code"] as? String
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A blocking HTTP/1.1 client over a plain socket, one connection per request. Each request runs on a serial queue
/// of its own, which gets a thread of its own: on Linux `DispatchQueue.global()` is the pool Swift concurrency runs
/// on, and blocked reads there would starve the server's handler tasks.
enum TestClient {
    static func send(port: Int, method: String, target: String, headers: [(String, String)] = [], body: [UInt8] = [],
                     closeAfterSending: Bool = false) async throws -> TestResponse {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue(label: "test.client").async {
                continuation.resume(with: Result {
                    try exchange(port: port, method: method, target: target, headers: headers, body: body,
                                 closeAfterSending: closeAfterSending)
                })
            }
        }
    }

    static func exchange(port: Int, method: String, target: String, headers: [(String, String)], body: [UInt8],
                         closeAfterSending: Bool) throws -> TestResponse {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestFailure("socket() failed") }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 30, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw TestFailure("connect to port \(port) failed") }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        if !body.isEmpty || method == "POST" { head += "Content-Length: \(body.count)\r\n" }
        head += "\r\n"
        let request = Array(head.utf8) + body
        var sent = 0
        while sent < request.count {
            let n = request[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }     // the server may answer (413) and close before reading everything
            sent += n
        }
        if closeAfterSending { return TestResponse(status: 0, headers: [], body: []) }
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            received.append(contentsOf: chunk[0..<n])
        }
        return try parse(received)
    }

    static func parse(_ bytes: [UInt8]) throws -> TestResponse {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let end = (0..<max(0, bytes.count - 3)).first(where: { Array(bytes[$0..<$0 + 4]) == separator }) else {
            throw TestFailure("no complete response head in \(bytes.count) bytes")
        }
        let lines = String(decoding: bytes[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let statusParts = lines[0].split(separator: " ")
        guard statusParts.count >= 2, let status = Int(statusParts[1]) else { throw TestFailure("bad status line \(lines[0])") }
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
        }
        var body = Array(bytes[(end + 4)...])
        if let length = headers.first(where: { $0.0.lowercased() == "content-length" }).flatMap({ Int($0.1) }) {
            body = Array(body.prefix(length))
        }
        return TestResponse(status: status, headers: headers, body: body)
    }
}

/// multipart/form-data with one file part per image.
func multipartBody(_ files: [(filename: String, contentType: String, bytes: [UInt8])], boundary: String = "cbam-test-boundary")
    -> (body: [UInt8], contentType: String)
{
    var body: [UInt8] = []
    for (index, file) in files.enumerated() {
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\(index)\"; filename=\"\(file.filename)\"\r\nContent-Type: \(file.contentType)\r\n\r\n".utf8)
        body += file.bytes + Array("\r\n".utf8)
    }
    body += Array("--\(boundary)--\r\n".utf8)
    return (body, "multipart/form-data; boundary=\(boundary)")
}

/// The value of a metric line such as `name{labels} value` in Prometheus text, or nil.
func metricValue(_ text: String, _ prefix: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(prefix + " ") {
        return Double(line.split(separator: " ").last!)
    }
    return nil
}
