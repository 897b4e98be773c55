// One client connection: reads and parses requests, runs each handler in a Task, writes responses in order,
// and enforces the timeouts. Everything here runs on its event loop's serial queue.
import Dispatch
import Logging
import Glibc

final class Connection: @unchecked Sendable {  // all mutable state is confined to `loop.queue`
    private enum Phase {
        /// Waiting for or reading a request.
        case reading
        /// A handler is running; later pipelined requests wait in the parser's buffer.
        case handling(Task<Void, Never>)
        /// The response is being written.
        case writing
        /// The last response is out; discarding input until the peer closes, so it reads the response before a reset.
        case lingering
        case closed
    }

    /// `body` is the silence timeout while a body arrives; `bodyTotal` is the whole body's deadline, armed instead
    /// once it is the sooner of the two.
    private enum Deadline { case none, newConnection, header, body, bodyTotal, idle, drainIdle, write, linger, drainLinger }

    let fd: Int32
    let peer: String
    let loop: EventLoop
    private let server: HTTPServer
    private let configuration: HTTPServer.Configuration

    private var parser: HTTPParser
    private var phase = Phase.reading
    private var readSource: DispatchSourceRead?
    private var readSuspended = false
    private var writeSource: DispatchSourceWrite?
    private let timer: DispatchSourceTimer
    private var deadline = Deadline.none
    private var outbound: [[UInt8]] = []
    private var outboundOffset = 0
    private var pendingCancels = 0
    private var draining = false
    private var lingerBytes = 0
    private var started = false
    /// Set while `processInput` runs, so a response finished synchronously inside it does not recurse into it.
    private var processing = false

    // The request in progress.
    private var head: HTTPRequestHead?
    private var requestStart = ContinuousClock.now
    private var requestStartKnown = false
    /// When the body of the request in progress must have arrived (`bodyTimeout` after its head).
    private var bodyDeadline = ContinuousClock.now
    private var closeAfterResponse = false

    init(fd: Int32, peer: String, loop: EventLoop, server: HTTPServer) {
        self.fd = fd
        self.peer = peer
        self.loop = loop
        self.server = server
        self.configuration = server.configuration
        self.parser = HTTPParser(limits: server.configuration.limits)
        self.timer = DispatchSource.makeTimerSource(queue: loop.queue)
    }

    /// Starts watching the socket. Call on `loop.queue`.
    func start() {
        if case .closed = phase { return }  // drained before it started
        started = true
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: loop.queue)
        source.setEventHandler { [self] in readable() }
        source.setCancelHandler { [self] in sourceCancelled() }
        readSource = source
        timer.setEventHandler { [self] in timerFired() }
        arm(.newConnection)
        timer.resume()
        source.resume()
    }

    // MARK: - Reading

    private func readable() {
        if case .closed = phase { return }
        var received = false
        for _ in 0..<configuration.readsPerWakeup {
            let n = recv(fd, loop.scratch.baseAddress, loop.scratch.count, 0)
            if n > 0 {
                if case .lingering = phase {
                    lingerBytes += n
                    if lingerBytes > configuration.lingerByteLimit { close(); return }
                    continue
                }
                parser.append(UnsafeRawBufferPointer(rebasing: loop.scratch[0..<n]))
                received = true
                if n < loop.scratch.count { break }
            } else if n == 0 {
                peerClosed()
                return
            } else {
                let e = errno
                if e == EAGAIN || e == EWOULDBLOCK { break }
                if e == EINTR { continue }
                peerClosed()
                return
            }
        }
        guard received else { return }
        switch phase {
        case .reading:
            if deadline == .body { arm(.body) }  // the read timeout measures silence, so progress resets it
            processInput()
        case .handling, .writing:
            if parser.bufferedByteCount > configuration.pipelineBufferLimit { suspendReading() }
        case .lingering, .closed:
            break
        }
    }

    /// Parses and dispatches what is buffered, until a handler starts or more bytes are needed.
    private func processInput() {
        guard !processing else { return }  // the running call's loop picks up the next request
        processing = true
        defer { processing = false }
        var answered = 0
        while case .reading = phase {
            if answered == configuration.pipelinedRequestsPerTurn {
                // A long pipeline yields the loop to other connections now and then.
                loop.queue.async { [self] in if case .reading = phase { processInput() } }
                return
            }
            let event: HTTPParser.Event?
            do {
                event = try parser.next()
            } catch {
                refuse(error)
                return
            }
            guard let event else {
                if parser.isReadingHead && !requestStartKnown {
                    requestStart = .now
                    requestStartKnown = true
                    if deadline == .idle { arm(.header) }  // the header deadline runs from a request's first byte
                }
                return
            }
            switch event {
            case .head(let parsed):
                head = parsed
                if !requestStartKnown { requestStart = .now }
                if parsed.framing != .none && parsed.framing != .length(0) {
                    bodyDeadline = .now + configuration.bodyTimeout
                    arm(.body)
                    if parsed.expectContinue && parser.bufferedByteCount == 0 {
                        enqueue(HTTPResponseEncoder.continueResponse, nil)
                    }
                }
            case .request(let parsed, let body):
                answered += 1
                dispatch(parsed, body: body)
            }
        }
    }

    private func peerClosed() {
        switch phase {
        case .handling(let task):
            // The client is gone: stop the work done for it (the service drops queued inferences).
            task.cancel()
            closeAfterResponse = true
            suspendReading()
            server.logger.debug("client closed the connection while its request was handled", metadata: ["remote": "\(peer)"])
        case .writing:
            closeAfterResponse = true
            suspendReading()
        case .reading:
            if !parser.isIdle {
                server.logger.debug("client closed the connection mid-request",
                                    metadata: ["remote": "\(peer)", "buffered": "\(parser.bufferedByteCount)"])
            }
            close()
        case .lingering:
            close()
        case .closed:
            break
        }
    }

    // MARK: - Handling

    private func dispatch(_ parsed: HTTPRequestHead, body: [UInt8]) {
        head = parsed
        deadline = .none
        timer.schedule(deadline: .distantFuture)
        let requestID = server.requestID(from: parsed.headers)
        var request = HTTPRequest(method: parsed.method, target: parsed.target, version: parsed.version,
                                  headers: parsed.headers, body: body, requestID: requestID, remoteAddress: peer)
        if draining || !parsed.keepAlive { closeAfterResponse = true }

        let match = server.router.match(method: parsed.method, path: request.path)
        request.route = match.route
        let (_, rawQuery) = HTTPRequest.split(target: parsed.target)
        if let rawQuery, QueryString.parse(rawQuery) == nil {
            respond(to: request, with: .error(status: .badRequest, code: "invalid_query",
                                              message: "The query string contains a malformed percent escape or invalid UTF-8."))
            return
        }
        switch match {
        case .error(let response, _):
            respond(to: request, with: response)
        case .handler(let handler, let parameters, _):
            request.pathParameters = parameters
            let task = Task { [self, request] in
                let response = await handler(request)
                loop.queue.async { [self] in respond(to: request, with: response) }
            }
            phase = .handling(task)
        }
    }

    /// Answers a request that broke the protocol or a limit, then closes.
    private func refuse(_ error: HTTPParseError) {
        closeAfterResponse = true
        let headers = error.headers ?? head?.headers ?? HTTPHeaders()
        let request = HTTPRequest(method: HTTPMethod(error.method ?? head?.method.rawValue ?? "-"), target: error.target ?? head?.target ?? "",
                                  headers: headers, requestID: server.requestID(from: headers), remoteAddress: peer)
        respond(to: request, with: .error(status: error.status, code: error.code, message: error.message))
    }

    private func respond(to request: HTTPRequest, with response: HTTPResponse) {
        switch phase {
        case .closed:
            server.record(request, response, ContinuousClock.now - requestStart)  // metrics still see cancelled requests
            return
        case .lingering, .writing: return
        case .reading, .handling: break
        }
        if let value = response.headers["Connection"], value.lowercased().contains("close") { closeAfterResponse = true }
        let connectionHeader: String? = closeAfterResponse ? "close"
            : (request.version == .http1_0 ? "keep-alive" : nil)
        let (bytes, body) = loop.encoder.encode(response, requestID: request.requestID, connection: connectionHeader,
                                                omitBody: request.method == .head)
        phase = .writing
        let duration = ContinuousClock.now - requestStart
        server.record(request, response, duration)
        enqueue(bytes, body)
    }

    // MARK: - Writing

    private func enqueue(_ bytes: [UInt8], _ body: [UInt8]?) {
        outbound.append(bytes)
        if let body { outbound.append(body) }
        flush()
    }

    private func flush() {
        while let chunk = outbound.first {
            let n = chunk.withUnsafeBytes { p in
                send(fd, p.baseAddress! + outboundOffset, p.count - outboundOffset, Int32(MSG_NOSIGNAL))
            }
            if n > 0 {
                outboundOffset += n
                if outboundOffset == chunk.count {
                    outbound.removeFirst()
                    outboundOffset = 0
                }
                if deadline == .write { arm(.write) }
                continue
            }
            let e = errno
            if n < 0 && (e == EAGAIN || e == EWOULDBLOCK) {
                waitWritable()
                return
            }
            if n < 0 && e == EINTR { continue }
            close()  // the peer reset the connection
            return
        }
        if let source = writeSource {
            writeSource = nil
            source.cancel()
        }
        switch phase {
        case .writing: responseWritten()
        case .reading where deadline == .write: arm(head != nil ? .body : .header)  // an interim 100 went out
        default: break
        }
    }

    private func waitWritable() {
        if deadline != .write { arm(.write) }
        guard writeSource == nil else { return }
        let source = DispatchSource.makeWriteSource(fileDescriptor: fd, queue: loop.queue)
        source.setEventHandler { [self] in flush() }
        source.setCancelHandler { [self] in sourceCancelled() }
        pendingCancels += 1
        writeSource = source
        source.resume()
    }

    private func responseWritten() {
        head = nil
        requestStartKnown = false
        if closeAfterResponse {
            linger()
            return
        }
        phase = .reading
        resumeReading()
        arm(.idle)
        if parser.bufferedByteCount > 0 { processInput() }  // a pipelined request is already here
    }

    /// Half-closes and drains input for a moment, so the peer reads our last response rather than a reset.
    private func linger() {
        phase = .lingering
        shutdown(fd, Int32(SHUT_WR))
        resumeReading()
        arm(draining ? .drainLinger : .linger)
    }

    // MARK: - Timeouts

    private func arm(_ kind: Deadline) {
        deadline = kind
        let interval: Duration
        switch kind {
        case .none: timer.schedule(deadline: .distantFuture); return
        case .newConnection, .header: interval = configuration.headerReadTimeout
        case .body, .bodyTotal:
            let remaining = bodyDeadline - .now
            if remaining <= configuration.bodyReadTimeout {
                deadline = .bodyTotal
                interval = max(remaining, .zero)
            } else {
                deadline = .body
                interval = configuration.bodyReadTimeout
            }
        case .idle: interval = configuration.idleTimeout
        case .drainIdle: interval = configuration.drainIdleGrace
        case .write: interval = configuration.writeTimeout
        case .linger: interval = configuration.lingerTimeout
        case .drainLinger: interval = configuration.drainLingerTimeout  // the peer had its response: don't hold the drain
        }
        timer.schedule(deadline: .now() + .nanoseconds(Int(interval.nanoseconds)))
    }

    private func timerFired() {
        switch deadline {
        case .none:
            return
        case .newConnection, .header:
            if case .reading = phase, !parser.isIdle {
                server.logger.debug("request head not received in time", metadata: ["remote": "\(peer)"])
                refuse(HTTPParseError(.requestTimeout, "request_timeout", "The request head was not received within the header timeout."))
            } else {
                close()
            }
        case .bodyTotal:
            refuse(HTTPParseError(.requestTimeout, "request_timeout",
                                  "The request body did not arrive within the body timeout (\(configuration.bodyTimeout))."))
        case .body:
            refuse(HTTPParseError(.requestTimeout, "request_timeout", "The request body stalled for longer than the body read timeout."))
        case .drainIdle:
            // Nothing came during the grace: close with a FIN (half-close and discard input for a moment), so that a
            // request crossing our close on the wire gets an end of stream rather than a reset. A request begun
            // meanwhile keeps its connection under the header timeout.
            if case .reading = phase, parser.isIdle { linger() } else { arm(.header) }
        case .idle, .write, .linger, .drainLinger:
            close()
        }
    }

    // MARK: - Shutdown

    /// Graceful shutdown: a busy connection closes after its current response (sent with `Connection: close`). An
    /// idle one first reads what has already arrived, and answers a request for `drainIdleGrace` more, since a
    /// keep-alive client may have sent one just before it could know; then it closes.
    func beginDrain() {
        draining = true
        closeAfterResponse = true
        switch phase {
        case .reading where parser.isIdle:
            readable()  // a request already in the socket's buffer is served, not reset
            if case .reading = phase, parser.isIdle { arm(.drainIdle) }
        case .lingering: arm(.drainLinger)
        default: break
        }
    }

    func close() {
        if case .closed = phase { return }
        if case .handling(let task) = phase { task.cancel() }
        phase = .closed
        deadline = .none
        if !started { timer.resume() }  // an inactive Dispatch source must be activated before it is released
        timer.cancel()
        if let source = writeSource {
            writeSource = nil
            source.cancel()
        }
        if let source = readSource {
            readSource = nil
            pendingCancels += 1
            if readSuspended { source.resume() }  // a suspended source never delivers its cancellation
            source.cancel()
        }
        outbound.removeAll()
        if pendingCancels == 0 { Glibc.close(fd) }
        server.connectionClosed(self)
    }

    private func sourceCancelled() {
        pendingCancels -= 1
        if pendingCancels == 0, case .closed = phase { Glibc.close(fd) }
    }

    private func suspendReading() {
        guard !readSuspended, let source = readSource else { return }
        readSuspended = true
        source.suspend()
    }

    private func resumeReading() {
        guard readSuspended, let source = readSource else { return }
        readSuspended = false
        source.resume()
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
