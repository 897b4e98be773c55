// A complete request as handlers see it.

public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    /// The request-target as sent, query included.
    public var target: String
    /// The path of the target, still percent-encoded, without the query (e.g. "/v1/models/a%20b").
    public var path: String
    /// Each query parameter's first value, percent-decoded.
    public var query: [String: String]
    /// Every query parameter in order, repeated names included.
    public var queryItems: [QueryItem]
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Values captured by `{name}` segments of the matched route, percent-decoded.
    public var pathParameters: [String: String]
    /// The pattern of the route the path matched ("/v1/models/{name}"), set by the router; nil when none did.
    public var route: String?
    /// The request's id: the client's `X-Request-Id` when it is sane, otherwise one made by the server.
    public var requestID: String
    /// "ip:port" of the peer, for logs.
    public var remoteAddress: String

    /// Builds a request from its target; the query is decoded leniently (malformed escapes are kept as sent).
    public init(method: HTTPMethod, target: String, version: HTTPVersion = .http1_1, headers: HTTPHeaders = HTTPHeaders(),
                body: [UInt8] = [], requestID: String = "", remoteAddress: String = "") {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        self.requestID = requestID
        self.remoteAddress = remoteAddress
        self.pathParameters = [:]
        let (path, rawQuery) = HTTPRequest.split(target: target)
        self.path = path
        let items = rawQuery.flatMap { QueryString.parse($0) ?? [] } ?? []
        self.queryItems = items
        var first: [String: String] = [:]
        for item in items where first[item.name] == nil { first[item.name] = item.value }
        self.query = first
    }

    /// Every value of the query parameter `name`.
    public func queryValues(_ name: String) -> [String] { queryItems.filter { $0.name == name }.map(\.value) }

    public var contentType: String? { headers["Content-Type"] }

    /// The media type of `Content-Type`, lowercased and without parameters ("image/png"); "" when there is none.
    public var mediaType: String { HTTPRequest.mediaType(of: contentType) }

    /// The media type of a `Content-Type` value, lowercased and without parameters: "multipart/form-data" for
    /// "Multipart/Form-Data; boundary=x"; "" for nil.
    public static func mediaType(of contentType: String?) -> String {
        guard let type = contentType?.split(separator: ";", maxSplits: 1).first else { return "" }
        let scalars = type.unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let end = scalars.lastIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        return String(scalars[start...end]).lowercased()
    }

    /// Splits a request-target into its path and raw query; absolute-form targets lose scheme and authority.
    package static func split(target: String) -> (path: String, query: Substring?) {
        var rest = target[...]
        for scheme in ["http://", "https://"] where rest.hasPrefix(scheme) {
            rest = rest.dropFirst(scheme.count)
            rest = rest.firstIndex(of: "/").map { rest[$0...] } ?? "/"
        }
        if let q = rest.firstIndex(of: "?") {
            return (String(rest[..<q]), rest[rest.index(after: q)...])
        }
        return (String(rest), nil)
    }
}
