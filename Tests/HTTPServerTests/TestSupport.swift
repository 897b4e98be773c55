// A blocking socket client and a server fixture, so tests speak raw bytes to a real server on 127.0.0.1.
import Dispatch
import Glibc
import HTTPServer
import Logging
import Synchronization
import Testing

struct ClientError: Error, CustomStringConvertible {
    let description: String
}

/// A parsed response as the client saw it.
struct ClientResponse: Sendable {
    var status: Int
    var reason: String
    var headers: HTTPHeaders
    var body: [UInt8]
    var text: String { String(decoding: body, as: UTF8.self) }
    subscript(name: String) -> String? { headers[name] }
}

/// A raw TCP client with blocking I/O and a receive timeout, so a broken server fails a test instead of hanging it.
final class TestClient: @unchecked Sendable {  // used by one test task at a time
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: Int, timeout: Duration = .seconds(5)) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ClientError(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let e = errno
            Glibc.close(fd)
            throw ClientError(description: "connect: errno \(e)")
        }
        setTimeout(timeout)
    }

    deinit { Glibc.close(fd) }

    func setTimeout(_ timeout: Duration) {
        let (s, atto) = timeout.components
        var tv = timeval(tv_sec: Int(s), tv_usec: Int(atto / 1_000_000_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { throw ClientError(description: "send: errno \(errno)") }
            offset += n
        }
    }

    /// Closes our sending side; the server sees EOF.
    func shutdownWrite() { Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Aborts with a reset (SO_LINGER 0), as a crashed client would.
    func reset() {
        var l = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
        Glibc.shutdown(fd, Int32(SHUT_RDWR))
    }

    /// Reads more bytes; false on EOF. Throws on timeout or error.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 { buffer.append(contentsOf: chunk[0..<n]); return true }
        if n == 0 { return false }
        throw ClientError(description: errno == EAGAIN ? "timed out waiting for the server" : "recv: errno \(errno)")
    }

    /// `readResponse` off the cooperative thread pool, which handlers need while the test waits.
    func read(head: Bool = false) async throws -> ClientResponse {
        try await blocking { try self.readResponse(head: head) }
    }

    /// `isClosedByServer` off the cooperative thread pool.
    func closedByServer() async throws -> Bool {
        try await blocking { try self.isClosedByServer() }
    }

    /// Reads one response. `head` means the request was HEAD: no body follows whatever Content-Length says.
    func readResponse(head: Bool = false) throws -> ClientResponse {
        var end: Int?
        while true {
            if let e = findHeadEnd() { end = e; break }
            guard try fill() else { throw ClientError(description: "connection closed before a response (\(buffer.count) bytes buffered)") }
        }
        let headText = String(decoding: buffer[0..<end!], as: UTF8.self)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ", maxSplits: 2)
        guard statusLine.count >= 2, statusLine[0] == "HTTP/1.1", let status = Int(statusLine[1]) else {
            throw ClientError(description: "bad status line in \(headText)")
        }
        var headers = HTTPHeaders()
        for line in lines where !line.isEmpty {
            let parts = line.split(separator: ":", maxSplits: 1)
            headers.add(String(parts[0]), parts.count > 1 ? String(parts[1].drop { $0 == " " }) : "")
        }
        buffer.removeFirst(end! + 4)
        var body: [UInt8] = []
        if !head, status >= 200, status != 204, status != 304, let length = headers["Content-Length"].flatMap(Int.init) {
            while buffer.count < length {
                guard try fill() else { throw ClientError(description: "connection closed mid-body") }
            }
            body = Array(buffer[0..<length])
            buffer.removeFirst(length)
        }
        return ClientResponse(status: status, reason: statusLine.count > 2 ? String(statusLine[2]) : "", headers: headers, body: body)
    }

    /// True when the server closes the connection (EOF or reset) with no further bytes.
    func isClosedByServer() throws -> Bool {
        if !buffer.isEmpty { return false }
        do {
            return try !fill()
        } catch let error as ClientError where error.description.hasPrefix("recv") {
            return true  // ECONNRESET
        }
    }

    private func findHeadEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 {
            return i
        }
        return nil
    }
}

/// Log lines captured in memory, to assert on access logs.
final class LogCapture: Sendable {
    let lines = Mutex<[(Logger.Level, String, Logger.Metadata)]>([])
    var entries: [(Logger.Level, String, Logger.Metadata)] { lines.withLock { $0 } }
}

struct CapturingLogHandler: LogHandler {
    let capture: LogCapture
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        capture.lines.withLock { $0.append((event.level, "\(event.message)", event.metadata ?? [:])) }
    }
}

/// Responses seen by the observer hook.
final class ObservedResponses: Sendable {
    let items = Mutex<[(String, Int)]>([])
    var all: [(String, Int)] { items.withLock { $0 } }
}

/// Starts a server on 127.0.0.1 with port 0 and short timeouts, runs `body`, then shuts it down.
func withServer(
    _ configure: (inout HTTPServer.Configuration) -> Void = { _ in },
    logCapture: LogCapture? = nil,
    observer: HTTPObserver? = nil,
    routes: (Router) -> Void = defaultRoutes,
    _ body: (HTTPServer, Int) async throws -> Void
) async throws {
    var configuration = HTTPServer.Configuration(host: "127.0.0.1", port: 0)
    configuration.eventLoops = 2
    configuration.headerReadTimeout = .seconds(5)
    configuration.idleTimeout = .seconds(5)
    configuration.accessLogLevel = .info
    configure(&configuration)
    let logger: Logger
    if let logCapture {
        logger = Logger(label: "test") { _ in CapturingLogHandler(capture: logCapture) }
    } else if getenv("HTTP_TEST_LOG") != nil {  // HTTP_TEST_LOG=1 swift test ...: the server's debug log on stderr
        var stream = Logger(label: "test") { StreamLogHandler.standardError(label: $0) }
        stream.logLevel = .debug
        logger = stream
    } else {
        logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    }
    let router = Router()
    routes(router)
    let server = HTTPServer(configuration: configuration, router: router, logger: logger, observer: observer)
    try server.start()
    do {
        try await body(server, server.boundPort)
    } catch {
        await server.shutdown(drainTimeout: .milliseconds(100))
        throw error
    }
    await server.shutdown(drainTimeout: .milliseconds(500))
}

/// Routes most tests use.
@Sendable func defaultRoutes(_ router: Router) {
    router.get("/hello") { _ in .text("hello") }
    router.post("/echo") { request in
        var response = HTTPResponse(body: request.body)
        response.headers.set("Content-Type", request.contentType ?? "application/octet-stream")
        return response
    }
    router.get("/items/{id}") { request in .text("item \(request.pathParameters["id"] ?? "?")") }
    router.get("/query") { request in
        .text(request.queryItems.map { "\($0.name)=\($0.value)" }.joined(separator: "|"))
    }
    router.get("/slow") { request in
        let ms = Int(request.query["ms"] ?? "200") ?? 200
        try? await Task.sleep(for: .milliseconds(ms))
        return .text("slow \(ms)")
    }
}

/// Runs blocking socket work on its own thread. Not on `DispatchQueue.global()`: on Linux that pool is the one
/// Swift concurrency's executor uses (one thread per core), so blocked reads would starve the server's handler tasks.
func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue(label: "test.blocking-io").async { continuation.resume(with: Result { try work() }) }  // a serial queue gets a thread of its own
    }
}

/// A well-formed GET.
func get(_ path: String, headers: String = "") -> String {
    "GET \(path) HTTP/1.1\r\nHost: test\r\n\(headers)\r\n"
}

/// Waits until `condition` holds or the timeout passes.
func eventually(timeout: Duration = .seconds(3), _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(5))
    }
    return condition()
}

/// Raises the soft open-file limit (the 1000-connection test needs two descriptors per connection).
func raiseFileLimit(to wanted: UInt) {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    if limit.rlim_cur < wanted {
        limit.rlim_cur = min(wanted, limit.rlim_max)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
