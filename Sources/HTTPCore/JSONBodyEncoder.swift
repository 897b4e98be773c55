// The one JSON encoder of the responses: Encodable values straight to UTF-8 bytes, no intermediate tree.
// Unlike Foundation's JSONEncoder it keeps keys in the order they are encoded (the API's field order is part of
// its contract) and writes a non-finite float as null; Tests/HTTPServerTests/JSONBodyEncoderTests.swift checks it
// against JSONEncoder on the same values. Standard library only, so the fuzz target builds it alone.

/// Encodes `Encodable` values as compact JSON, fields in encoding order.
public enum JSONBodyEncoder {
    public static func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let sink = JSONSink()
        try sink.write(value, depth: 0)
        sink.close(deeperThan: 0)
        return sink.bytes
    }
}

/// The bytes written so far and the containers still open, innermost last. A container is closed when its parent
/// writes its next element or when the encoding ends (Codable has no "end of container" call).
final class JSONSink {
    var bytes: [UInt8] = []
    private var open: [(close: UInt8, empty: Bool)] = []

    init() { bytes.reserveCapacity(1024) }

    var depth: Int { open.count }

    func close(deeperThan depth: Int) {
        while open.count > depth { bytes.append(open.removeLast().close) }
    }

    /// Opens `{` or `[` one level below `depth`; returns the new container's depth.
    func openContainer(keyed: Bool, at depth: Int) -> Int {
        close(deeperThan: depth)
        bytes.append(keyed ? UInt8(ascii: "{") : UInt8(ascii: "["))
        open.append((keyed ? UInt8(ascii: "}") : UInt8(ascii: "]"), true))
        return open.count
    }

    /// Starts the next element of the container at `depth`: closes what its previous element left open, then a comma.
    func beginElement(of depth: Int) {
        close(deeperThan: depth)
        if open[depth - 1].empty { open[depth - 1].empty = false } else { bytes.append(UInt8(ascii: ",")) }
    }

    func key(_ key: String, of depth: Int) {
        beginElement(of: depth)
        string(key)
        bytes.append(UInt8(ascii: ":"))
    }

    /// Writes one value at the current position (after a key, a comma, or at the top level).
    func write<T: Encodable>(_ value: T, depth: Int) throws {
        switch value {
        case let v as String: string(v)
        case let v as Int: integer(v)
        case let v as Float: float(v)
        case let v as Double: double(v)
        case let v as Bool: bool(v)
        case let v as [Float]: floats(v)
        case let v as ArraySlice<Float>: floats(v)
        case let v as [Int]: integers(v)
        case let v as [String]: strings(v)
        default:
            let before = bytes.count
            let encoder = ValueEncoder(sink: self, depth: depth)
            try value.encode(to: encoder)
            if bytes.count == before { bytes.append(contentsOf: "{}".utf8) }  // encoded nothing, as JSONEncoder writes it
        }
    }

    func null() { bytes.append(contentsOf: "null".utf8) }
    func bool(_ v: Bool) { bytes.append(contentsOf: v ? "true".utf8 : "false".utf8) }
    func integer<I: BinaryInteger>(_ v: I) { bytes.append(contentsOf: v.description.utf8) }
    /// The shortest text that reads back as the same value; JSON has no NaN or infinity, so those are null.
    func float(_ v: Float) { if v.isFinite { bytes.append(contentsOf: v.description.utf8) } else { null() } }
    func double(_ v: Double) { if v.isFinite { bytes.append(contentsOf: v.description.utf8) } else { null() } }

    func floats(_ values: some Collection<Float>) { array(values) { float($0) } }
    func integers(_ values: [Int]) { array(values) { integer($0) } }
    func strings(_ values: [String]) { array(values) { string($0) } }

    /// `[a,b,...]` with each element written by `write`.
    private func array<C: Collection>(_ values: C, _ write: (C.Element) -> Void) {
        bytes.append(UInt8(ascii: "["))
        var first = true
        for v in values {
            if first { first = false } else { bytes.append(UInt8(ascii: ",")) }
            write(v)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    func string(_ s: String) {
        let hex = JSONSink.hexDigits
        bytes.append(UInt8(ascii: "\""))
        for b in s.utf8 {
            switch b {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0..<0x20: bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(b >> 4)], hex[Int(b & 15)]])
            default: bytes.append(b)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

/// The `Encoder` a value's `encode(to:)` sees: its first container opens at the sink's current position.
private final class ValueEncoder: Encoder {
    let sink: JSONSink
    /// The depth of the container this value sits in (0 at the top level).
    let depth: Int
    /// The container this value opened, once it asked for one (asking again returns the same).
    private var opened: Int?

    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(sink: JSONSink, depth: Int) {
        self.sink = sink
        self.depth = depth
    }

    private func containerDepth(keyed: Bool) -> Int {
        if let opened { return opened }
        let d = sink.openContainer(keyed: keyed, at: depth)
        opened = d
        return d
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(KeyedContainer<Key>(sink: sink, depth: containerDepth(keyed: true)))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        UnkeyedContainer(sink: sink, depth: containerDepth(keyed: false))
    }

    func singleValueContainer() -> any SingleValueEncodingContainer { SingleValueContainer(sink: sink, depth: depth) }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let sink: JSONSink
    let depth: Int
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil(forKey key: Key) throws { sink.key(key.stringValue, of: depth); sink.null() }
    mutating func encode(_ value: Bool, forKey key: Key) throws { sink.key(key.stringValue, of: depth); sink.bool(value) }
    mutating func encode(_ value: String, forKey key: Key) throws { sink.key(key.stringValue, of: depth); sink.string(value) }
    mutating func encode(_ value: Double, forKey key: Key) throws { sink.key(key.stringValue, of: depth); sink.double(value) }
    mutating func encode(_ value: Float, forKey key: Key) throws { sink.key(key.stringValue, of: depth); sink.float(value) }
    mutating func encode(_ value: Int, forKey key: Key) throws { sink.key(key.stringValue, of: depth); sink.integer(value) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        sink.key(key.stringValue, of: depth)
        try sink.write(value, depth: depth)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        sink.key(key.stringValue, of: depth)
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(sink: sink, depth: sink.openContainer(keyed: true, at: depth)))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        sink.key(key.stringValue, of: depth)
        return UnkeyedContainer(sink: sink, depth: sink.openContainer(keyed: false, at: depth))
    }

    mutating func superEncoder() -> any Encoder { superEncoder(forKey: Key(stringValue: "super")!) }
    mutating func superEncoder(forKey key: Key) -> any Encoder {
        sink.key(key.stringValue, of: depth)
        return ValueEncoder(sink: sink, depth: depth)
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let sink: JSONSink
    let depth: Int
    private(set) var count = 0
    var codingPath: [any CodingKey] { [] }

    init(sink: JSONSink, depth: Int) {
        self.sink = sink
        self.depth = depth
    }

    private mutating func next() {
        sink.beginElement(of: depth)
        count += 1
    }

    mutating func encodeNil() throws { next(); sink.null() }
    mutating func encode(_ value: Bool) throws { next(); sink.bool(value) }
    mutating func encode(_ value: String) throws { next(); sink.string(value) }
    mutating func encode(_ value: Double) throws { next(); sink.double(value) }
    mutating func encode(_ value: Float) throws { next(); sink.float(value) }
    mutating func encode(_ value: Int) throws { next(); sink.integer(value) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        next()
        try sink.write(value, depth: depth)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        next()
        return KeyedEncodingContainer(KeyedContainer<NestedKey>(sink: sink, depth: sink.openContainer(keyed: true, at: depth)))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        next()
        return UnkeyedContainer(sink: sink, depth: sink.openContainer(keyed: false, at: depth))
    }

    mutating func superEncoder() -> any Encoder {
        next()
        return ValueEncoder(sink: sink, depth: depth)
    }
}

private struct SingleValueContainer: SingleValueEncodingContainer {
    let sink: JSONSink
    let depth: Int
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil() throws { sink.null() }
    mutating func encode(_ value: Bool) throws { sink.bool(value) }
    mutating func encode(_ value: String) throws { sink.string(value) }
    mutating func encode(_ value: Double) throws { sink.double(value) }
    mutating func encode(_ value: Float) throws { sink.float(value) }
    mutating func encode(_ value: Int) throws { sink.integer(value) }
    mutating func encode<T: Encodable>(_ value: T) throws { try sink.write(value, depth: depth) }
}
