import Testing
@testable import CBAMService

@Suite struct RouteTemplatesTests {
    @Test(arguments: [
        ("/v1/predict", "/v1/predict"),
        ("/v1/models/tiny/predict", "/v1/models/{name}/predict"),
        ("/v1/models/tiny", "/v1/models/{name}"),
        ("/v1/attention/8f2e", "/v1/attention/{id}"),
        ("/v2/models/tiny/versions/1/infer", "/v2/models/{name}/versions/{version}/infer"),
        ("/v2/health/live", "/v2/health/live"),
        ("/v2", "/v2"),
        ("/wp-admin/login.php", "unmatched"),
        ("/v1/models/a/b/c", "unmatched"),
    ])
    func pathsMapToTheirRoutePattern(path: String, label: String) {
        #expect(RouteTemplates.label(path: path) == label)
    }
}
