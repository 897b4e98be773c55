// Routes a request by method and path pattern ("/v1/models/{name}/predict") to its handler.
import Synchronization

public typealias HTTPHandler = @Sendable (HTTPRequest) async -> HTTPResponse

public final class Router: Sendable {
    private struct Route: Sendable {
        enum Segment: Sendable {
            case literal(String)
            case parameter(String)
        }
        let method: HTTPMethod
        let pattern: String
        let segments: [Segment]
        let handler: HTTPHandler
    }

    /// What routing decided for a request, and the pattern of the route the path matched ("/v1/models/{name}"),
    /// which handlers and metrics use instead of matching the path again.
    public enum Match: Sendable {
        case handler(HTTPHandler, pathParameters: [String: String], route: String)
        /// No route or a malformed path (route nil), or no route for this method (405, route the path's pattern):
        /// answer with this error directly.
        case error(HTTPResponse, route: String?)

        public var route: String? {
            switch self {
            case .handler(_, _, let route): route
            case .error(_, let route): route
            }
        }
    }

    private let routes = Mutex<[Route]>([])

    public init() {}

    /// Registers `handler` for `method` on `pattern`. A `{name}` segment matches any one non-empty segment.
    /// Literal segments win over parameters when two patterns match. GET routes also answer HEAD.
    public func add(_ method: HTTPMethod, _ pattern: String, handler: @escaping HTTPHandler) {
        let segments: [Route.Segment] = Router.segments(of: pattern).map { segment in
            if segment.hasPrefix("{") && segment.hasSuffix("}") && segment.count > 2 {
                return .parameter(String(segment.dropFirst().dropLast()))
            }
            return .literal(String(segment))
        }
        routes.withLock { $0.append(Route(method: method, pattern: pattern, segments: segments, handler: handler)) }
    }

    /// Every registered pattern, once each, in the order first registered.
    public var patterns: [String] {
        routes.withLock { routes in
            var seen = Set<String>()
            return routes.map(\.pattern).filter { seen.insert($0).inserted }
        }
    }

    public func get(_ pattern: String, handler: @escaping HTTPHandler) { add(.get, pattern, handler: handler) }
    public func post(_ pattern: String, handler: @escaping HTTPHandler) { add(.post, pattern, handler: handler) }

    /// The handler for `method` and `path` (percent-encoded, no query), or the 400/404/405 to answer.
    public func match(method: HTTPMethod, path: String) -> Match {
        guard path.utf8.first == UInt8(ascii: "/") else {  // "OPTIONS *" and the like
            return .error(.error(status: .notFound, code: "not_found", message: "No route matches \(path)."), route: nil)
        }
        var decoded: [String] = []
        for raw in Router.segments(of: path) {
            guard let segment = QueryString.percentDecode(raw) else {
                return .error(.error(status: .badRequest, code: "invalid_path", message: "The path contains a malformed percent escape."), route: nil)
            }
            decoded.append(segment)
        }
        let candidates = routes.withLock { routes in
            routes.compactMap { route -> (Route, [String: String])? in
                Router.bind(route.segments, to: decoded).map { (route, $0) }
            }
        }
        if candidates.isEmpty {
            return .error(.error(status: .notFound, code: "not_found", message: "No route matches \(path)."), route: nil)
        }
        let ranked = candidates.count == 1 ? candidates : candidates.sorted { Router.isMoreSpecific($0.0.segments, than: $1.0.segments) }
        if let hit = ranked.first(where: { $0.0.method == method })
            ?? (method == .head ? ranked.first(where: { $0.0.method == .get }) : nil) {
            return .handler(hit.0.handler, pathParameters: hit.1, route: hit.0.pattern)
        }
        var allowed = Set(candidates.map(\.0.method.rawValue))
        if allowed.contains("GET") { allowed.insert("HEAD") }
        let allow = allowed.sorted().joined(separator: ", ")
        var response = HTTPResponse.error(status: .methodNotAllowed, code: "method_not_allowed",
                                          message: "\(method.rawValue) is not allowed on \(path); allowed: \(allow).")
        response.headers.set("Allow", allow)
        return .error(response, route: ranked.first?.0.pattern)
    }

    private static func segments(of path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: false).dropFirst().filter { !$0.isEmpty }
    }

    private static func bind(_ pattern: [Route.Segment], to path: [String]) -> [String: String]? {
        guard pattern.count == path.count else { return nil }
        var parameters: [String: String] = [:]
        for (segment, value) in zip(pattern, path) {
            switch segment {
            case .literal(let literal): if literal != value { return nil }
            case .parameter(let name):
                if value.isEmpty { return nil }
                parameters[name] = value
            }
        }
        return parameters
    }

    private static func isMoreSpecific(_ a: [Route.Segment], than b: [Route.Segment]) -> Bool {
        for (x, y) in zip(a, b) {
            switch (x, y) {
            case (.literal, .parameter): return true
            case (.parameter, .literal): return false
            default: continue
            }
        }
        return false
    }
}
