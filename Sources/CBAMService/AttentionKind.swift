import CBAMEngine
import HTTPServer

/// Which attention maps a client asked for.
public enum AttentionKind: String, Sendable, CaseIterable {
    case none, channel, spatial, all

    var includesChannel: Bool { self == .channel || self == .all }
    var includesSpatial: Bool { self == .spatial || self == .all }

    static func parse(_ value: String?, parameter: String) throws(HTTPError) -> AttentionKind {
        guard let value else { return .none }
        guard let kind = AttentionKind(rawValue: value.lowercased()) else {
            throw .badRequest("invalid_parameter",
                              "\(parameter) must be one of none, channel, spatial, all; got \"\(value)\"")
        }
        return kind
    }
}
