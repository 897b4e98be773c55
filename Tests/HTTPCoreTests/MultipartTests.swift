// multipart/form-data parsing (RFC 7578): the shapes browsers and curl send, and the broken ones.
import HTTPCore
import Testing

@Suite struct MultipartTests {
    private func body(_ text: String) -> [UInt8] { Array(text.utf8) }

    @Test func fieldsAndFiles() throws {
        let binary: [UInt8] = [0x00, 0x0D, 0x0A, 0x2D, 0x2D, 0xFF, 0x0D]  // CR LF "--" inside the content is fine
        var bytes = body("preamble to ignore\r\n--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            + "--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"cat \\\"1\\\".jpg\"\r\nContent-Type: image/jpeg\r\n\r\n")
        bytes += binary
        bytes += body("\r\n--XyZ--\r\nepilogue")
        let parts = try Multipart.parse(body: bytes, contentType: "multipart/form-data; boundary=XyZ")
        #expect(parts.count == 2)
        #expect(parts[0].name == "note")
        #expect(parts[0].filename == nil)
        #expect(parts[0].body == body("hello"))
        #expect(parts[1].name == "image")
        #expect(parts[1].filename == "cat \"1\".jpg")
        #expect(parts[1].contentType == "image/jpeg")
        #expect(parts[1].body == binary)
    }

    @Test func quotedBoundaryEmptyPartsAndExtendedFilename() throws {
        let text = "--a b'c\r\nContent-Disposition: form-data; name=empty\r\n\r\n\r\n"
            + "--a b'c  \r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"; filename*=UTF-8''%C3%A9t%C3%A9.png\r\n\r\nz\r\n--a b'c--"
        let parts = try Multipart.parse(body: body(text), contentType: "Multipart/Form-Data; charset=utf-8; boundary=\"a b'c\"")
        #expect(parts.map(\.name) == ["empty", "f"])
        #expect(parts[0].body.isEmpty)
        #expect(parts[1].filename == "été.png")
    }

    @Test func noPartsIsAnEmptyForm() throws {
        #expect(try Multipart.parse(body: body("--b--\r\n"), contentType: "multipart/form-data; boundary=b").isEmpty)
    }

    @Test(arguments: [
        ("multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nno end", "ends before the closing boundary"),
        ("multipart/form-data; boundary=b", "nothing here", "does not contain its boundary"),
        ("multipart/form-data; boundary=b", "--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b--", "no Content-Disposition"),
        ("multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--", "no name"),
        ("multipart/form-data; boundary=b", "--b\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--b--", "not 'form-data'"),
        ("multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=a\r\n folded\r\n\r\nx\r\n--b--", "malformed header"),
        ("multipart/form-data; boundary=b", "--b\r\nContent-Disposition: form-data; name=a", "not terminated"),
        ("multipart/form-data; boundary=b", "--bjunk\r\n", "not followed by CRLF"),
        ("multipart/form-data; boundary=b", "--b", "not followed by CRLF"),
        ("multipart/form-data; boundary=\"unterminated", "--b--", "multipart/form-data"),
        ("multipart/form-data", "--b--", "no boundary parameter"),
        ("multipart/form-data; boundary=" + String(repeating: "x", count: 71), "--b--", "1 to 70"),
    ])
    func malformedBodiesAreRefused(contentType: String, text: String, expected: String) {
        do {
            _ = try Multipart.parse(body: body(text), contentType: contentType)
            Issue.record("accepted \(text.debugDescription)")
        } catch {
            #expect(error.status.code == 400 || error.status.code == 415)
            #expect(error.message.contains(expected), "\(error.message)")
        }
    }

    @Test func wrongMediaTypeIs415() {
        #expect(throws: HTTPError.self) { try Multipart.parse(body: [], contentType: "application/json") }
        do { _ = try Multipart.parse(body: [], contentType: "application/json") } catch { #expect(error.status == .unsupportedMediaType) }
    }

    @Test func partLimits() {
        var limits = Multipart.Limits()
        limits.maxParts = 2
        let three = (0..<3).map { "--b\r\nContent-Disposition: form-data; name=p\($0)\r\n\r\nv\r\n" }.joined() + "--b--"
        do {
            _ = try Multipart.parse(body: body(three), contentType: "multipart/form-data; boundary=b", limits: limits)
            Issue.record("accepted three parts")
        } catch {
            #expect(error.message.contains("more than 2 parts"))
        }
    }

    @Test func adversarialInputStaysLinear() throws {
        // Many near-matches of the delimiter: quadratic search would take seconds here.
        let boundary = String(repeating: "a", count: 70)
        let nearMiss = "\r\n--" + String(repeating: "a", count: 69) + "b"
        let text = "--\(boundary)\r\nContent-Disposition: form-data; name=x\r\n\r\n"
            + String(repeating: nearMiss, count: 40_000) + "\r\n--\(boundary)--"
        let clock = ContinuousClock()
        let start = clock.now
        let parts = try Multipart.parse(body: body(text), contentType: "multipart/form-data; boundary=\(boundary)")
        #expect(parts.first?.body.count == nearMiss.utf8.count * 40_000)
        #expect(clock.now - start < .seconds(2))
    }
}
