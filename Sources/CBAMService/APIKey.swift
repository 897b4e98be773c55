/// The optional shared secret every route but the health probes requires, as `Authorization: Bearer <key>`.
public struct APIKey: Sendable {
    private let secret: [UInt8]

    public init?(_ key: String?) {
        guard let key, !key.isEmpty else { return nil }
        secret = Array(key.utf8)
    }

    /// Whether an `Authorization` header value carries this key. The comparison takes the same time wherever the
    /// first difference lies, so response timing does not leak the key byte by byte.
    public func accepts(authorization: String?) -> Bool {
        guard let authorization else { return false }
        let prefix = "bearer "
        let bytes = Array(authorization.utf8)
        guard bytes.count >= prefix.utf8.count,
              String(decoding: bytes[0..<prefix.utf8.count], as: UTF8.self).lowercased() == prefix else { return false }
        return Self.constantTimeEqual(Array(bytes[prefix.utf8.count...]), secret)
    }

    /// Compares all of `candidate` against `secret` (the candidate's length is the client's own to know).
    static func constantTimeEqual(_ candidate: [UInt8], _ secret: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: candidate.count ^ secret.count)
        difference |= UInt8(truncatingIfNeeded: (candidate.count ^ secret.count) >> 8)
        for i in 0..<candidate.count {
            difference |= candidate[i] ^ secret[i % max(secret.count, 1)]
        }
        return difference == 0 && candidate.count == secret.count
    }
}
