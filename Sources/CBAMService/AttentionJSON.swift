import CBAMEngine

/// Which attention maps a client asked for.
public enum AttentionKind: String, Sendable, CaseIterable {
    case none, channel, spatial, all

    var includesChannel: Bool { self == .channel || self == .all }
    var includesSpatial: Bool { self == .spatial || self == .all }

    static func parse(_ value: String?, parameter: String) throws(ServiceError) -> AttentionKind {
        guard let value else { return .none }
        guard let kind = AttentionKind(rawValue: value.lowercased()) else {
            throw .badRequest("invalid_parameter",
                              "\(parameter) must be one of none, channel, spatial, all; got \"\(value)\"")
        }
        return kind
    }
}

/// The attention layer objects, shaped as `cbam-serve predict` prints them:
/// `{"layer": "layer1.0", "channel": [...], "spatial": {"height": h, "width": w, "data": [...]}}`.
enum AttentionJSON {
    static func layers(_ maps: [AttentionMap], kind: AttentionKind) -> String {
        "[" + maps.map { layer($0, kind: kind) }.joined(separator: ",") + "]"
    }

    static func layer(_ map: AttentionMap, kind: AttentionKind) -> String {
        var out = "{\"layer\":" + JSONText.string(map.layer)
        if kind.includesChannel { out += ",\"channel\":" + JSONText.numbers(map.channel) }
        if kind.includesSpatial {
            out += ",\"spatial\":{\"height\":\(map.spatialHeight),\"width\":\(map.spatialWidth),\"data\":"
                + JSONText.numbers(map.spatial) + "}"
        }
        return out + "}"
    }
}
