// HTTP/1.1 over real sockets: persistence, pipelining, chunked uploads, HEAD, 100-continue, routing errors, ids, logs.
import Foundation
import HTTPServer
import Logging
import Testing

@Suite struct ServerProtocolTests {
    @Test func keepAliveByDefaultWithDateAndLength() async throws {
        try await withServer { _, port in
            let client = try TestClient(port: port)
            for _ in 0..<3 {
                try client.send(get("/hello"))
                let response = try await client.read()
                #expect(response.status == 200)
                #expect(response.text == "hello")
                #expect(response["Content-Length"] == "5")
                #expect(response["Connection"] == nil)
                let date = try #require(response["Date"])
                #expect(date.hasSuffix(" GMT") && date.count == 29, "IMF-fixdate: \(date)")
            }
        }
    }

    @Test func http10ClosesUnlessKeepAlive() async throws {
        try await withServer { _, port in
            let plain = try TestClient(port: port)
            try plain.send("GET /hello HTTP/1.0\r\n\r\n")
            let first = try await plain.read()
            #expect(first.status == 200)
            #expect(first["Connection"] == "close")
            #expect(try await plain.closedByServer())

            let kept = try TestClient(port: port)
            for _ in 0..<2 {
                try kept.send("GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                let response = try await kept.read()
                #expect(response.status == 200)
                #expect(response["Connection"] == "keep-alive")
            }
        }
    }

    @Test func connectionCloseIsHonoured() async throws {
        try await withServer { _, port in
            let client = try TestClient(port: port)
            try client.send(get("/hello", headers: "Connection: close\r\n"))
            #expect(try await client.read()["Connection"] == "close")
            #expect(try await client.closedByServer())
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() async throws {
        try await withServer { _, port in
            let client = try TestClient(port: port)
            // The first is slow and the later ones fast: order must still follow the requests.
            try client.send(get("/slow?ms=150") + get("/items/1") + "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nbody"
                + get("/items/2") + "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n" + get("/items/3"))
            #expect(try await client.read().text == "slow 150")
            #expect(try await client.read().text == "item 1")
            #expect(try await client.read().text == "body")
            #expect(try await client.read().text == "item 2")
            let head = try await client.read(head: true)
            #expect(head.status == 200)
            #expect(head["Content-Length"] == "5")
            #expect(try await client.read().text == "item 3")
        }
    }

    @Test func longPipelineOfInstantAnswers() async throws {
        try await withServer { _, port in
            let client = try TestClient(port: port)
            // Answers that complete synchronously (404s, routing errors) must not recurse once per request.
            let count = 5000
            let batch = (0..<count).map { $0 % 2 == 0 ? get("/missing/\($0)") : "DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n" }.joined()
            try await blocking { try client.send(batch) }
            let statuses = try await blocking { try (0..<count).map { _ in try client.readResponse().status } }
            #expect(statuses == (0..<count).map { $0 % 2 == 0 ? 404 : 405 })
        }
    }

    @Test func headHasLengthButNoBody() async throws {
        try await withServer { _, port in
            let client = try TestClient(port: port)
            try client.send("HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n" + get("/items/9"))
            let head = try await client.read(head: true)
            #expect(head["Content-Length"] == "5")
            #expect(head.body.isEmpty)
            // If HEAD had leaked a body, this read would see "hello" instead of the next response.
            #expect(try await client.read().text == "item 9")
        }
    }

    @Test func chunkedUploadIsReassembled() async throws {
        try await withServer { _, port in
            let client = try TestClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n")
            try client.send("4\r\nWiki\r\n")
            try await Task.sleep(for: .milliseconds(20))
            try client.send("5;name=value\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: yes\r\n\r\n")
            let response = try await client.read()
            #expect(response.status == 200)
            #expect(response.text == "Wikipedia in\r\n\r\nchunks.")
            #expect(response["Content-Type"] == "text/plain")
            try client.send(get("/hello"))
            #expect(try await client.read().text == "hello")
        }
    }

    @Test func largeBodiesBothWays() async throws {
        try await withServer { _, port in
            // Built before connecting: under a sanitizer this takes seconds, longer than the server waits for a head.
            let payload = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let client = try TestClient(port: port)
            try await blocking {
                try client.send(Array("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: \(payload.count)\r\n\r\n".utf8) + payload)
            }
            let response = try await client.read()
            #expect(response.body == payload)
        }
    }

    @Test func expectContinueGetsAnInterimResponse() async throws {
        try await withServer { _, port in
            let client = try TestClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
            let interim = try await client.read()
            #expect(interim.status == 100)
            try client.send("12345")
            let final = try await client.read()
            #expect(final.status == 200)
            #expect(final.text == "12345")
        }
    }

    @Test func expectContinueTooLargeIsRefusedWithoutContinue() async throws {
        try await withServer({ $0.limits.maxBodyBytes = 100 }) { _, port in
            let client = try TestClient(port: port)
            try client.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n")
            let response = try await client.read()
            #expect(response.status == 413)
            #expect(try await client.closedByServer())
        }
    }

    @Test func notFoundAndMethodNotAllowedUseTheErrorShape() async throws {
        try await withServer { _, port in
            let client = try TestClient(port: port)
            try client.send(get("/nope"))
            let missing = try await client.read()
            #expect(missing.status == 404)
            #expect(missing["Content-Type"] == "application/json")
            let json = try JSONSerialization.jsonObject(with: Data(missing.body)) as? [String: [String: String]]
            #expect(json?["error"]?["code"] == "not_found")
            #expect(json?["error"]?["message"]?.isEmpty == false)

            try client.send("DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            let wrong = try await client.read()
            #expect(wrong.status == 405)
            #expect(wrong["Allow"] == "GET, HEAD")
            #expect(wrong.text.contains(#""code":"method_not_allowed""#))

            try client.send(get("/query?a=%zz"))
            let badQuery = try await client.read()
            #expect(badQuery.status == 400)
            #expect(badQuery.text.contains("invalid_query"))

            try client.send(get("/query?x=1&y=a%20b+c&x=2"))
            #expect(try await client.read().text == "x=1|y=a b c|x=2")
        }
    }

    @Test func multipartUploadOverTheWire() async throws {
        try await withServer(routes: { router in
            router.post("/upload") { request in
                do throws(HTTPError) {
                    let parts = try Multipart.parse(body: request.body, contentType: request.contentType ?? "")
                    return .text(parts.map { "\($0.name):\($0.filename ?? "-"):\($0.contentType ?? "-"):\($0.body.count)" }.joined(separator: ","))
                } catch {
                    return .error(error)
                }
            }
        }) { _, port in
            let client = try TestClient(port: port)
            let image = [UInt8](repeating: 0xFF, count: 70_000) + Array("\r\n--not-the-boundary".utf8)
            var body = Array("--BOUNDARY\r\nContent-Disposition: form-data; name=\"top_k\"\r\n\r\n3\r\n".utf8)
            body += Array("--BOUNDARY\r\nContent-Disposition: form-data; name=\"image\"; filename=\"cat.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".utf8)
            body += image + Array("\r\n--BOUNDARY--\r\n".utf8)
            let upload = body
            try await blocking {
                try client.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=BOUNDARY\r\nContent-Length: \(upload.count)\r\n\r\n")
                try client.send(upload)
            }
            #expect(try await client.read().text == "top_k:-:-:1,image:cat.jpg:image/jpeg:\(image.count)")

            try client.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: multipart/form-data; boundary=B\r\nContent-Length: 5\r\n\r\n--B\r\n")
            let broken = try await client.read()
            #expect(broken.status == 400)
            #expect(broken.text.contains("invalid_multipart"))
            try client.send("POST /upload HTTP/1.1\r\nHost: t\r\nContent-Type: text/plain\r\nContent-Length: 1\r\n\r\nx")
            #expect(try await client.read().status == 415)
        }
    }

    @Test func requestIDIsEchoedOrMade() async throws {
        try await withServer { _, port in
            let client = try TestClient(port: port)
            try client.send(get("/hello", headers: "X-Request-Id: abc-123\r\n"))
            #expect(try await client.read()["X-Request-Id"] == "abc-123")
            try client.send(get("/hello") + get("/hello"))
            let a = try #require(try await client.read()["X-Request-Id"])
            let b = try #require(try await client.read()["X-Request-Id"])
            #expect(!a.isEmpty && a != b)
            // An id with spaces is not trusted (it would corrupt log lines): a fresh one replaces it.
            try client.send(get("/hello", headers: "X-Request-Id: bad id\r\n"))
            #expect(try await client.read()["X-Request-Id"] != "bad id")
            // Errors carry one too.
            try client.send("GET /x HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n")
            let refused = try await client.read()
            #expect(refused.status == 400)
            #expect(refused["X-Request-Id"]?.isEmpty == false)
        }
    }

    @Test func handlerHeadersCannotBreakFraming() async throws {
        try await withServer(routes: { router in
            router.get("/evil") { _ in
                HTTPResponse(status: .ok, headers: ["Content-Length": "999", "X-Split": "a\r\nInjected: 1", "X-Fine": "ok"], body: Array("ab".utf8))
            }
        }) { _, port in
            let client = try TestClient(port: port)
            try client.send(get("/evil"))
            let response = try await client.read()
            #expect(response["Content-Length"] == "2")
            #expect(response["Injected"] == nil)
            #expect(response["X-Split"] == nil)
            #expect(response["X-Fine"] == "ok")
            #expect(response.text == "ab")
        }
    }

    @Test func accessLogAndObserverSeeEveryResponse() async throws {
        let logs = LogCapture()
        let observed = ObservedResponses()
        try await withServer(logCapture: logs, observer: { request, response, _ in
            observed.items.withLock { $0.append((request.path, response.status.code)) }
        }) { _, port in
            let client = try TestClient(port: port)
            try client.send(get("/hello", headers: "X-Request-Id: log-me\r\n") + get("/missing") + "DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n")
            for _ in 0..<3 { _ = try await client.read() }
            let big = try TestClient(port: port)
            try big.send("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 999999999\r\n\r\n")
            #expect(try await big.read().status == 413)
            #expect(await eventually { observed.all.count == 4 })
        }
        #expect(observed.all.map(\.1) == [200, 404, 405, 413])
        let access = logs.entries.filter { $0.2["status"] != nil }
        #expect(access.count == 4)
        let first = try #require(access.first)
        #expect(first.0 == .info)
        #expect(first.1 == "GET /hello 200")
        #expect(first.2["request_id"] == "log-me")
        #expect(first.2["duration_ms"] != nil)
    }
}
