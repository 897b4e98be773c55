// The listener: binds, accepts onto event loops, enforces the connection limit, logs access and drains on shutdown.
import Dispatch
import Logging
import Synchronization
import Glibc

/// Called once per response, on the connection's event loop (keep it fast): every response written (400, 404, 405,
/// 413... included), a handler's response that found its client gone, and each 503 at the connection limit
/// (method "-", empty path: no request was read).
public typealias HTTPObserver = @Sendable (_ request: HTTPRequest, _ response: HTTPResponse, _ duration: Duration) -> Void

public final class HTTPServer: Sendable {
    public let configuration: Configuration
    let router: Router
    let logger: Logger
    private let observer: HTTPObserver?
    private let loops: [EventLoop]
    private let acceptQueue = DispatchQueue(label: "http.accept", qos: .userInitiated)
    private let requestIDPrefix: String
    private let requestCounter = Atomic<UInt64>(0)

    private struct State {
        var listener: Int32 = -1
        var acceptSource: DispatchSourceRead?
        var boundPort = 0
        var connections: [ObjectIdentifier: Connection] = [:]
        var nextLoop = 0
        var started = false
        var shuttingDown = false
        var acceptPaused = false
        /// `shutdown` waiting for the last connection to close, by waiter; resumed by `connectionClosed`.
        var closedWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        /// Waiters whose wait was cancelled (at the drain deadline) before they registered.
        var cancelledWaiters: Set<UInt64> = []
        var nextWaiter: UInt64 = 0
    }
    private let state = Mutex(State())

    public init(configuration: Configuration, router: Router, logger: Logger, observer: HTTPObserver? = nil) {
        self.configuration = configuration
        self.router = router
        self.logger = logger
        self.observer = observer
        self.loops = (0..<max(1, configuration.eventLoops)).map { EventLoop(index: $0) }
        var random = SystemRandomNumberGenerator()
        self.requestIDPrefix = String(random.next() as UInt64, radix: 16)
    }

    /// The port actually bound (useful with port 0). Zero before `start()`.
    public var boundPort: Int { state.withLock { $0.boundPort } }

    /// Connections currently open.
    public var connectionCount: Int { state.withLock { $0.connections.count } }

    /// Binds and starts accepting. Returns at once; connections are served on Dispatch queues.
    public func start() throws {
        signal(SIGPIPE, SIG_IGN)  // a peer that vanishes must cost an EPIPE, not the process
        if state.withLock({ $0.started }) { throw SocketError(call: "start (the server is already started)", errno: EALREADY) }
        let (fd, port) = try Socket.listen(host: configuration.host, port: configuration.port, backlog: configuration.backlog)
        state.withLock { s in
            // Made inside the lock: Dispatch sources are not Sendable, so they never leave the Mutex's region.
            let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: acceptQueue)
            source.setEventHandler { [self] in acceptPending(fd) }
            source.setCancelHandler { Glibc.close(fd) }
            s.listener = fd
            s.boundPort = port
            s.acceptSource = source
            s.started = true
            source.resume()
        }
        logger.info("listening", metadata: ["address": "\(configuration.host):\(port)"])
    }

    private func acceptPending(_ listener: Int32) {
        for _ in 0..<256 {
            guard let (fd, peer) = Socket.accept(listener) else {
                let e = errno
                if e == EMFILE || e == ENFILE {
                    pauseAccepting(reason: "out of file descriptors")
                }
                return
            }
            let admitted: Connection? = state.withLock { s in
                guard !s.shuttingDown, s.connections.count < configuration.maxConnections else { return nil }
                let loop = loops[s.nextLoop % loops.count]
                s.nextLoop &+= 1
                let connection = Connection(fd: fd, peer: peer, loop: loop, server: self)
                s.connections[ObjectIdentifier(connection)] = connection
                return connection
            }
            if let admitted {
                admitted.loop.queue.async { admitted.start() }
            } else {
                reject(fd, peer: peer)
            }
        }
    }

    /// Over the connection limit (or shutting down): a best-effort 503 and close, without a connection object.
    private func reject(_ fd: Int32, peer: String) {
        let error = HTTPError(status: .serviceUnavailable, code: "too_many_connections",
                              message: "The server is at its limit of \(configuration.maxConnections) connections; retry later.")
        let body = error.jsonBody
        let head = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\n"
            + "Connection: close\r\nRetry-After: \(configuration.retryAfterSeconds)\r\nX-Request-Id: \(requestID(from: HTTPHeaders()))\r\n\r\n"
        let bytes = Array(head.utf8) + body
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        Glibc.shutdown(fd, Int32(SHUT_WR))
        Glibc.close(fd)
        // No request was read; the observer still sees the 503 (method "-", empty path) so refusals are counted.
        observer?(HTTPRequest(method: HTTPMethod("-"), target: "", remoteAddress: peer), .error(error), .zero)
        logger.warning("connection refused: limit reached", metadata: ["remote": "\(peer)", "limit": "\(configuration.maxConnections)"])
    }

    private func pauseAccepting(reason: String) {
        logger.error("accept paused for 100 ms", metadata: ["reason": "\(reason)"])
        state.withLock { s in
            guard !s.acceptPaused, let source = s.acceptSource else { return }
            s.acceptPaused = true
            source.suspend()
        }
        acceptQueue.asyncAfter(deadline: .now() + .milliseconds(100)) { [self] in
            state.withLock { s in
                guard s.acceptPaused else { return }
                s.acceptPaused = false
                s.acceptSource?.resume()
            }
        }
    }

    func connectionClosed(_ connection: Connection) {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.connections.removeValue(forKey: ObjectIdentifier(connection))
            guard s.connections.isEmpty else { return [] }
            defer { s.closedWaiters = [:] }
            return Array(s.closedWaiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once no connection is open, or at `deadline` (when given), whichever comes first.
    private func connectionsClosed(before deadline: ContinuousClock.Instant?) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.connectionsClosed() }
            if let deadline { group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) } }
            await group.next()
            group.cancelAll()
        }
    }

    /// Returns once no connection is open, or when the task is cancelled.
    private func connectionsClosed() async {
        let id = state.withLock { s in
            s.nextWaiter += 1
            return s.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { s in
                    if s.connections.isEmpty || s.cancelledWaiters.remove(id) != nil { return true }
                    s.closedWaiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
                if let waiter = s.closedWaiters.removeValue(forKey: id) { return waiter }
                s.cancelledWaiters.insert(id)
                return nil
            }
            waiter?.resume()
        }
    }

    // MARK: - Requests

    /// The client's X-Request-Id if it is a sane token (≤ 128 visible ASCII characters), else a fresh one.
    func requestID(from headers: HTTPHeaders) -> String {
        if let given = headers["X-Request-Id"], (1...128).contains(given.utf8.count),
           given.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) {
            return given
        }
        let n = requestCounter.wrappingAdd(1, ordering: .relaxed).newValue
        return requestIDPrefix + "-" + String(n, radix: 16)
    }

    /// Access log line and observer call for one response.
    func record(_ request: HTTPRequest, _ response: HTTPResponse, _ duration: Duration) {
        if let level = configuration.accessLogLevel, logger.logLevel <= level {
            let ms = Double(duration.nanoseconds) / 1e6
            logger.log(level: level, "\(request.method.rawValue) \(request.path) \(response.status.code)", metadata: [
                "request_id": "\(request.requestID)",
                "remote": "\(request.remoteAddress)",
                "status": "\(response.status.code)",
                "bytes": "\(response.body.count)",
                "duration_ms": "\((ms * 1000).rounded() / 1000)",
            ])
        }
        observer?(request, response, duration)
    }

    // MARK: - Shutdown

    /// Stops accepting, lets requests in flight finish for up to `drainTimeout`, then closes what is left.
    public func shutdown(drainTimeout: Duration) async {
        let (connections, alreadyShuttingDown) = state.withLock { s in
            let already = s.shuttingDown
            s.shuttingDown = true
            if let source = s.acceptSource {
                if s.acceptPaused { source.resume() }  // a suspended source never runs its cancel handler
                s.acceptPaused = false
                source.cancel()  // the cancel handler closes the listening socket
                s.acceptSource = nil
            }
            return (Array(s.connections.values), already)
        }
        if !alreadyShuttingDown {
            logger.info("draining", metadata: ["connections": "\(connections.count)"])
        }
        for connection in connections {
            connection.loop.queue.async { connection.beginDrain() }
        }
        await connectionsClosed(before: .now + drainTimeout)
        let left = state.withLock { Array($0.connections.values) }
        if !left.isEmpty {
            logger.warning("drain timeout: closing connections", metadata: ["connections": "\(left.count)"])
            for connection in left { connection.loop.queue.async { connection.close() } }
            await connectionsClosed(before: nil)
        }
        if !alreadyShuttingDown { logger.info("stopped") }
    }

    /// Serves until SIGTERM or SIGINT, then shuts down gracefully (within `configuration.drainTimeout`) and returns.
    public func runUntilSignalled(signals: [Int32] = [SIGTERM, SIGINT]) async {
        let queue = DispatchQueue(label: "http.signals")
        let received: Int32 = await withCheckedContinuation { continuation in
            queue.async {
                var sources: [DispatchSourceSignal] = []
                var resumed = false
                for number in signals {
                    signal(number, SIG_IGN)  // the Dispatch source receives it instead of the default action
                    let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                    source.setEventHandler {
                        guard !resumed else { return }
                        resumed = true
                        for s in sources { s.cancel() }
                        continuation.resume(returning: number)
                    }
                    source.resume()
                    sources.append(source)
                }
            }
        }
        logger.info("signal received; shutting down", metadata: ["signal": "\(received)"])
        await shutdown(drainTimeout: configuration.drainTimeout)
    }
}
