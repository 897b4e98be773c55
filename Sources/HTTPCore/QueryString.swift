// Query strings (application/x-www-form-urlencoded) and percent-decoding (RFC 3986 §2.1).

public struct QueryItem: Sendable, Equatable {
    public var name: String
    public var value: String
    public init(name: String, value: String) { self.name = name; self.value = value }
}

public enum QueryString {
    /// Splits `a=1&b=x%20y&flag` into items, decoding each name and value. `+` means space.
    /// Returns nil when a percent escape is malformed (`%zz`, a lone `%`) or decodes to invalid UTF-8.
    public static func parse(_ query: Substring) -> [QueryItem]? {
        var items: [QueryItem] = []
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let name: Substring, value: Substring
            if let eq = pair.firstIndex(of: "=") {
                name = pair[..<eq]
                value = pair[pair.index(after: eq)...]
            } else {
                name = pair
                value = ""
            }
            guard let n = percentDecode(name, plusAsSpace: true), let v = percentDecode(value, plusAsSpace: true) else { return nil }
            items.append(QueryItem(name: n, value: v))
        }
        return items
    }

    public static func parse(_ query: String) -> [QueryItem]? { parse(query[...]) }

    /// Decodes `%XX` escapes (and `+` when asked). Nil for malformed escapes or invalid UTF-8.
    public static func percentDecode<S: StringProtocol>(_ s: S, plusAsSpace: Bool = false) -> String? {
        let utf8 = s.utf8
        if !utf8.contains(where: { $0 == UInt8(ascii: "%") || (plusAsSpace && $0 == UInt8(ascii: "+")) }) {
            return String(s)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var i = utf8.startIndex
        while i != utf8.endIndex {
            let b = utf8[i]
            if b == UInt8(ascii: "%") {
                let h = utf8.index(after: i)
                guard h != utf8.endIndex else { return nil }
                let l = utf8.index(after: h)
                guard l != utf8.endIndex, let hi = hex(utf8[h]), let lo = hex(utf8[l]) else { return nil }
                bytes.append(hi << 4 | lo)
                i = utf8.index(after: l)
            } else {
                bytes.append(plusAsSpace && b == UInt8(ascii: "+") ? 0x20 : b)
                i = utf8.index(after: i)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hex(_ b: UInt8) -> UInt8? {
        switch b {
        case 0x30...0x39: b - 0x30
        case 0x41...0x46: b - 0x41 + 10
        case 0x61...0x66: b - 0x61 + 10
        default: nil
        }
    }
}
