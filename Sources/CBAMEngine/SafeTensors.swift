import Foundation

/// A `.safetensors` file: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
/// shape and byte range, then the raw little-endian data. The file is memory-mapped and read once.
public struct SafeTensors {
    public struct Entry: Sendable {
        public let name: String
        public let dtype: String
        public let shape: [Int]
        let byteRange: Range<Int>
        public var count: Int { shape.reduce(1, *) }
    }

    public let entries: [String: Entry]
    private let data: Data
    private let dataStart: Int

    public init(contentsOf url: URL) throws(ModelError) {
        let data: Data
        do { data = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw ModelError("checkpoint_not_found", "cannot read \(url.path): \(error.localizedDescription)")
        }
        try self.init(data: data, name: url.lastPathComponent)
    }

    public init(data: Data, name: String = "model.safetensors") throws(ModelError) {
        func fail(_ m: String) -> ModelError { ModelError("invalid_checkpoint", "\(name): \(m)") }
        guard data.count >= 8 else { throw fail("file is \(data.count) bytes, too short for a safetensors header") }
        let headerLength = data.withUnsafeBytes { raw in Int(UInt64(littleEndian: raw.loadUnaligned(as: UInt64.self))) }
        guard headerLength > 0, headerLength <= data.count - 8 else {
            throw fail("header length \(headerLength) does not fit in a file of \(data.count) bytes")
        }
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<8 + headerLength)) } catch {
            throw fail("header is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw fail("header is not a JSON object") }
        let dataLength = data.count - 8 - headerLength
        var entries: [String: Entry] = [:]
        for (key, value) in header where key != "__metadata__" {
            guard let info = value as? [String: Any], let dtype = info["dtype"] as? String,
                  let shape = (info["shape"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }),
                  let offsets = (info["data_offsets"] as? [Any])?.compactMap({ ($0 as? NSNumber)?.intValue }), offsets.count == 2
            else { throw fail("tensor \(key) has a malformed header entry") }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("tensor \(key) has a negative dimension in \(shape)") }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataLength else {
                throw fail("tensor \(key) has data offsets [\(begin), \(end)] outside the \(dataLength) data bytes")
            }
            let width = Self.byteWidth(dtype)
            if let width, end - begin != shape.reduce(1, *) * width {
                throw fail("tensor \(key) of shape \(shape) and dtype \(dtype) needs \(shape.reduce(1, *) * width) bytes, has \(end - begin)")
            }
            entries[key] = Entry(name: key, dtype: dtype, shape: shape, byteRange: begin..<end)
        }
        self.entries = entries
        self.data = data
        self.dataStart = 8 + headerLength
    }

    /// The values of a float32 tensor.
    public func floats(_ name: String) throws(ModelError) -> [Float] {
        guard let e = entries[name] else { throw ModelError("missing_tensor", "checkpoint has no tensor \(name)") }
        guard e.dtype == "F32" else {
            throw ModelError("unsupported_dtype", "tensor \(name) has dtype \(e.dtype); only F32 checkpoints are supported")
        }
        let count = e.count
        let start = dataStart + e.byteRange.lowerBound
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            data.withUnsafeBytes { raw in
                for i in 0..<count {
                    buffer[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: start + 4 * i, as: UInt32.self)))
                }
            }
            initialized = count
        }
    }

    /// The bytes of a `.safetensors` file holding float32 tensors (name, shape, values), in the given order.
    public static func encode(_ tensors: [(name: String, shape: [Int], values: [Float])]) -> Data {
        var header: [String] = []
        var offset = 0
        for t in tensors {
            precondition(t.shape.reduce(1, *) == t.values.count, "tensor \(t.name): shape \(t.shape) does not hold \(t.values.count) values")
            let shape = t.shape.map(String.init).joined(separator: ",")
            header.append("\"\(t.name)\":{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(offset + 4 * t.values.count)]}")
            offset += 4 * t.values.count
        }
        var json = Array(("{" + header.joined(separator: ",") + "}").utf8)
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data()
        out.reserveCapacity(8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: json)
        for t in tensors {
            t.values.withUnsafeBufferPointer { buffer in
                for v in buffer { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            }
        }
        return out
    }

    private static func byteWidth(_ dtype: String) -> Int? {
        switch dtype {
        case "F64", "I64", "U64": 8
        case "F32", "I32", "U32": 4
        case "F16", "BF16", "I16", "U16": 2
        case "I8", "U8", "BOOL", "F8_E4M3", "F8_E5M2": 1
        default: nil
        }
    }
}
