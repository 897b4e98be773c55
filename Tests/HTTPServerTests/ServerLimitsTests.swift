// Each limit over real sockets: the status it answers with, and that the connection is closed.
import HTTPServer
import Testing

@Suite struct ServerLimitsTests {
    @Test func headerSectionTooLargeIs431() async throws {
        try await withServer({ $0.limits.maxHeaderBytes = 1024 }) { _, port in
            let client = try TestClient(port: port)
            try client.send("GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: \(String(repeating: "x", count: 2000))\r\n\r\n")
            let response = try await client.read()
            #expect(response.status == 431)
            #expect(response.text.contains("header_too_large"))
            #expect(response["Connection"] == "close")
            #expect(try await client.closedByServer())
        }
    }

    @Test func headerSectionRefusedBeforeItEnds() async throws {
        try await withServer({ $0.limits.maxHeaderBytes = 1024 }) { _, port in
            let client = try TestClient(port: port)
            // Never terminated: the server must not wait for the end to refuse it.
            try client.send("GET /hello HTTP/1.1\r\nHost: t\r\n" + String(repeating: "X-A: aaaaaaaaaaaaaaaa\r\n", count: 100))
            #expect(try await client.read().status == 431)
        }
    }

    @Test func uriTooLongIs414() async throws {
        try await withServer({ $0.limits.maxURIBytes = 256 }) { _, port in
            let client = try TestClient(port: port)
            try client.send(get("/items/" + String(repeating: "a", count: 300)))
            let response = try await client.read()
            #expect(response.status == 414)
            #expect(response.text.contains("uri_too_long"))
            #expect(try await client.closedByServer())

            let fits = try TestClient(port: port)
            try fits.send(get("/items/" + String(repeating: "a", count: 200)))
            #expect(try await fits.read().status == 200)
        }
    }

    @Test func bodyTooLargeIs413BeforeTheBodyIsSent() async throws {
        let called = ObservedResponses()
        try await withServer({ $0.limits.maxBodyBytes = 1000 }, routes: { router in
            router.post("/echo") { request in
                called.items.withLock { $0.append(("called", request.body.count)) }
                return .text("should not run")
            }
        }) { _, port in
            let client = try TestClient(port: port)
            // Only the head is sent: the 413 must come from Content-Length alone.
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nX-Request-Id: big-1\r\nContent-Length: 1001\r\n\r\n")
            let response = try await client.read()
            #expect(response.status == 413)
            #expect(response["X-Request-Id"] == "big-1")
            #expect(response.text.contains("body_too_large"))
            #expect(try await client.closedByServer())

            let chunked = try TestClient(port: port)
            try chunked.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + String(repeating: "a", count: 1000) + "\r\n1\r\n")
            #expect(try await chunked.read().status == 413)
        }
        #expect(called.all.isEmpty)
    }

    @Test func slowLorisGets408() async throws {
        try await withServer({ $0.headerReadTimeout = .milliseconds(300) }) { _, port in
            let client = try TestClient(port: port)
            let start = ContinuousClock.now
            // A byte every 50 ms keeps the socket busy but the head never completes in time.
            try client.send("GET /hello HTTP/1.1\r\n")  // the request has begun: the timeout must answer 408
            let trickle = Task.detached {
                for byte in "Host: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".utf8 {
                    try? client.send([byte])
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
            let response = try await client.read()
            trickle.cancel()
            #expect(response.status == 408)
            #expect(response.text.contains("request_timeout"))
            let elapsed = ContinuousClock.now - start
            #expect(elapsed >= .milliseconds(250) && elapsed < .seconds(4))
        }
    }

    @Test func silentNewConnectionIsClosedWithoutResponse() async throws {
        try await withServer({ $0.headerReadTimeout = .milliseconds(200) }) { server, port in
            let client = try TestClient(port: port)
            #expect(try await client.closedByServer())
            #expect(await eventually { server.connectionCount == 0 })
        }
    }

    @Test func stalledBodyGets408() async throws {
        try await withServer({ $0.bodyReadTimeout = .milliseconds(200) }) { _, port in
            let client = try TestClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nabc")
            let response = try await client.read()
            #expect(response.status == 408)
        }
    }

    @Test func tricklingBodyGets408AtTheBodyTimeout() async throws {
        try await withServer({ $0.bodyReadTimeout = .seconds(2); $0.bodyTimeout = .milliseconds(500) }) { _, port in
            let client = try TestClient(port: port)
            let start = ContinuousClock.now
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
            // A byte every 100 ms is never silent for the 2 s read timeout, but 100 bytes would take 10 s.
            for _ in 0..<8 {
                try await Task.sleep(for: .milliseconds(100))
                try? client.send("x")  // the server may have answered and closed already
            }
            let response = try await client.read()
            #expect(response.status == 408)
            #expect(response.text.contains("did not arrive within the body timeout"))
            #expect(ContinuousClock.now - start < .seconds(2))  // the silence timeout alone would answer after ~2.8 s
        }
    }

    @Test func idleKeepAliveConnectionIsClosed() async throws {
        try await withServer({ $0.idleTimeout = .milliseconds(200) }) { server, port in
            let client = try TestClient(port: port)
            let start = ContinuousClock.now  // the idle timer starts after the response, so after this
            try client.send(get("/hello"))
            #expect(try await client.read().status == 200)
            #expect(try await client.closedByServer())
            #expect(ContinuousClock.now - start >= .milliseconds(190))
            #expect(await eventually { server.connectionCount == 0 })
        }
    }

    @Test func clientThatDoesNotReadIsDroppedAfterTheWriteTimeout() async throws {
        try await withServer({ $0.writeTimeout = .milliseconds(200) }, routes: { router in
            router.get("/big") { _ in HTTPResponse(body: [UInt8](repeating: 0x61, count: 64 << 20)) }
        }) { server, port in
            let client = try TestClient(port: port)
            try client.send(get("/big"))
            #expect(await eventually { server.connectionCount == 1 })
            // The client reads nothing: the socket buffers fill, the server waits writeTimeout, then gives up.
            #expect(await eventually(timeout: .seconds(5)) { server.connectionCount == 0 })
        }
    }

    @Test func connectionsOverTheLimitGet503() async throws {
        let observed = ObservedResponses()
        try await withServer({ $0.maxConnections = 3 }, observer: { request, response, _ in
            observed.items.withLock { $0.append((request.method.rawValue, response.status.code)) }
        }) { server, port in
            let held = try (0..<3).map { _ in try TestClient(port: port) }
            #expect(await eventually { server.connectionCount == 3 })
            let extra = try TestClient(port: port)
            let refused = try await extra.read()
            #expect(refused.status == 503)
            #expect(refused.text.contains("too_many_connections"))
            #expect(refused["Connection"] == "close")
            #expect(try await extra.closedByServer())
            // The held ones still work, and a slot freed is a slot usable again.
            try held[0].send(get("/hello", headers: "Connection: close\r\n"))
            #expect(try await held[0].read().status == 200)
            #expect(await eventually { server.connectionCount == 2 })
            let again = try TestClient(port: port)
            try again.send(get("/hello"))
            #expect(try await again.read().status == 200)
        }
        #expect(observed.all.contains { $0 == ("-", 503) })
    }
}
