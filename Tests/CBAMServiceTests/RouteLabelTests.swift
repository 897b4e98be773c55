import HTTPServer
import Testing
@testable import CBAMService

/// Metrics label a request with the pattern its route matched, so that the labels stay few however many paths
/// clients try; the router hands that pattern over, nobody matches the path again.
@Suite struct RouteLabelTests {
    @Test func pathsMapToTheirRoutePattern() async throws {
        let service = InferenceService(model: try Fixtures.model())
        let router = service.makeRouter()
        let cases: [(HTTPMethod, String, String?)] = [
            (.post, "/v1/predict", "/v1/predict"),
            (.post, "/v1/models/tiny/predict", "/v1/models/{name}/predict"),
            (.get, "/v1/models/tiny", "/v1/models/{name}"),
            (.get, "/v1/attention/8f2e", "/v1/attention/{id}"),
            (.post, "/v2/models/tiny/versions/1/infer", "/v2/models/{name}/versions/{version}/infer"),
            (.get, "/v2/health/live", "/v2/health/live"),
            (.get, "/v2", "/v2"),
            (.delete, "/v1/models", "/v1/models"),
            (.get, "/wp-admin/login.php", nil),
            (.get, "/v1/models/a/b/c", nil),
        ]
        for (method, path, route) in cases {
            #expect(router.match(method: method, path: path).route == route, "\(method.rawValue) \(path)")
        }
        await service.shutdown()
    }
}
