/// The route patterns of the service, for metric labels that stay few however many paths clients try.
enum RouteTemplates {
    static let all = [
        "/healthz", "/readyz", "/metrics", "/openapi.json",
        "/v1/predict", "/v1/models", "/v1/models/{name}", "/v1/models/{name}/predict", "/v1/attention/{id}",
        "/v2", "/v2/health/live", "/v2/health/ready",
        "/v2/models/{name}", "/v2/models/{name}/ready", "/v2/models/{name}/config", "/v2/models/{name}/infer",
        "/v2/models/{name}/versions/{version}", "/v2/models/{name}/versions/{version}/ready",
        "/v2/models/{name}/versions/{version}/config", "/v2/models/{name}/versions/{version}/infer",
    ]
    private static let split = all.map { ($0, $0.split(separator: "/", omittingEmptySubsequences: true)) }

    /// The pattern `path` matches, or "unmatched".
    static func label(path: String) -> String {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        for (template, parts) in split where parts.count == segments.count {
            if zip(parts, segments).allSatisfy({ $0.first == "{" || $0 == $1 }) {
                return template
            }
        }
        return "unmatched"
    }
}
