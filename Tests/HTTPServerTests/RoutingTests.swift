// Router, query strings and the JSON helpers, without sockets.
import Foundation
import HTTPServer
import Testing

@Suite struct QueryStringTests {
    @Test func decodesPercentAndPlus() throws {
        let items = try #require(QueryString.parse("a=1&b=x%20y+z&a=2&flag&e=&%C3%A9t%C3%A9=%E2%9C%93"))
        #expect(items == [
            QueryItem(name: "a", value: "1"), QueryItem(name: "b", value: "x y z"), QueryItem(name: "a", value: "2"),
            QueryItem(name: "flag", value: ""), QueryItem(name: "e", value: ""), QueryItem(name: "été", value: "✓"),
        ])
    }

    @Test(arguments: ["a=%", "a=%2", "a=%zz", "%G0=1", "a=%FF"])
    func malformedEscapesAreRefused(query: String) {
        #expect(QueryString.parse(query) == nil)
    }

    @Test func requestExposesFirstAndAllValues() {
        let request = HTTPRequest(method: .get, target: "/p?a=1&a=2&b=%2F")
        #expect(request.path == "/p")
        #expect(request.query == ["a": "1", "b": "/"])
        #expect(request.queryValues("a") == ["1", "2"])
        #expect(HTTPRequest(method: .get, target: "http://host:8080/x/y?z=1").path == "/x/y")
    }
}

@Suite struct RouterTests {
    private func router() -> Router {
        let router = Router()
        router.get("/v1/models") { _ in .text("list") }
        router.get("/v1/models/{name}") { r in .text("model \(r.pathParameters["name"]!)") }
        router.post("/v1/models/{name}/predict") { r in .text("predict \(r.pathParameters["name"]!)") }
        router.get("/v1/models/special") { _ in .text("special") }
        router.add(.delete, "/v1/models/{name}") { _ in .text("deleted") }
        return router
    }

    private func run(_ router: Router, _ method: HTTPMethod, _ path: String) async -> HTTPResponse {
        switch router.match(method: method, path: path) {
        case .handler(let handler, let parameters, let route):
            var request = HTTPRequest(method: method, target: path)
            request.pathParameters = parameters
            request.route = route
            return await handler(request)
        case .error(let response, _):
            return response
        }
    }

    @Test func parametersLiteralsAndDecoding() async {
        let r = router()
        #expect(await run(r, .get, "/v1/models").body == Array("list".utf8))
        #expect(await run(r, .get, "/v1/models/").body == Array("list".utf8))
        #expect(await run(r, .get, "/v1/models/resnet%2020").body == Array("model resnet 20".utf8))
        #expect(await run(r, .get, "/v1/models/special").body == Array("special".utf8))
        #expect(await run(r, .post, "/v1/models/a/predict").body == Array("predict a".utf8))
        #expect(await run(r, .head, "/v1/models/a").status == .ok)  // HEAD falls back to GET
    }

    @Test func theMatchNamesTheRoutePattern() {
        let r = router()
        #expect(r.match(method: .get, path: "/v1/models/a").route == "/v1/models/{name}")
        #expect(r.match(method: .get, path: "/v1/models/special").route == "/v1/models/special")
        #expect(r.match(method: .head, path: "/v1/models").route == "/v1/models")
        #expect(r.match(method: .post, path: "/v1/models/a%20b/predict").route == "/v1/models/{name}/predict")
        #expect(r.match(method: .put, path: "/v1/models/a").route == "/v1/models/{name}")  // a 405 still names it
        #expect(r.match(method: .get, path: "/nope").route == nil)
        #expect(r.match(method: .get, path: "/v1/models/%zz").route == nil)
    }

    @Test func notFoundMethodNotAllowedAndBadEscapes() async throws {
        let r = router()
        let missing = await run(r, .get, "/v2/nothing")
        #expect(missing.status == .notFound)
        #expect(String(decoding: missing.body, as: UTF8.self).contains(#""code":"not_found""#))
        let wrongMethod = await run(r, .put, "/v1/models/a")
        #expect(wrongMethod.status == .methodNotAllowed)
        #expect(wrongMethod.headers["Allow"] == "DELETE, GET, HEAD")
        let bad = await run(r, .get, "/v1/models/%zz")
        #expect(bad.status == .badRequest)
    }
}

@Suite struct JSONBodyTests {
    struct Payload: Codable, Equatable { var name: String; var count: Int }

    @Test func roundTrip() throws {
        let response = HTTPResponse.json(Payload(name: "a", count: 2), status: .created)
        #expect(response.status == .created)
        #expect(response.headers["Content-Type"] == "application/json")
        let request = HTTPRequest(method: .post, target: "/", headers: ["Content-Type": "application/json; charset=utf-8"], body: response.body)
        #expect(try request.decodeJSON(Payload.self) == Payload(name: "a", count: 2))
    }

    @Test func errorsUseTheOneShape() throws {
        let wrongType = HTTPRequest(method: .post, target: "/", headers: ["Content-Type": "text/plain"], body: Array("{}".utf8))
        #expect(throws: HTTPError(status: .unsupportedMediaType, code: "unsupported_media_type",
                                  message: "Expected Content-Type application/json, got 'text/plain'.")) {
            try wrongType.decodeJSON(Payload.self)
        }
        let missing = HTTPRequest(method: .post, target: "/", body: Array(#"{"name":"a"}"#.utf8))
        do {
            _ = try missing.decodeJSON(Payload.self)
            Issue.record("expected an error")
        } catch {
            #expect(error.status == .badRequest)
            #expect(error.code == "invalid_json")
            #expect(error.message.contains("count"))
        }
        let body = HTTPResponse.error(status: .badRequest, code: "bad_thing", message: "Quote \" and\nnewline.").body
        let decoded = try JSONSerialization.jsonObject(with: Data(body)) as? [String: [String: String]]
        #expect(decoded == ["error": ["code": "bad_thing", "message": "Quote \" and\nnewline."]])
    }
}
