import Foundation

/// A float32 array read from or written to NumPy's `.npy` format (C order, little-endian `<f4`).
public struct NPYArray: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        precondition(shape.reduce(1, *) == values.count, "NPYArray: shape \(shape) does not hold \(values.count) values")
        self.shape = shape
        self.values = values
    }
}

/// Why an `.npy` file could not be read: a stable code and a sentence.
public struct NPYError: Error, CustomStringConvertible, Sendable, Equatable {
    public let code: String
    public let message: String
    public init(_ code: String, _ message: String) { self.code = code; self.message = message }
    public var description: String { message }
}

/// NumPy's `.npy` format, versions 1.0 to 3.0, float32 only.
public enum NPY {
    public static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // "\x93NUMPY"

    /// Reads a `.npy` file holding a little-endian float32 array in C order.
    public static func read(contentsOf url: URL) throws(NPYError) -> NPYArray {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw NPYError("input_not_found", "cannot read \(url.path): \(error.localizedDescription)")
        }
        return try decode([UInt8](data), name: url.lastPathComponent)
    }

    /// Decodes the bytes of a `.npy` file; `name` appears in error messages.
    public static func decode(_ bytes: [UInt8], name: String = "input") throws(NPYError) -> NPYArray {
        func fail(_ m: String) -> NPYError { NPYError("invalid_npy", "\(name): \(m)") }
        guard bytes.count >= 10, Array(bytes[0..<6]) == magic else { throw fail("not a .npy file (bad magic bytes)") }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw fail("truncated header") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw fail("unsupported .npy version \(major)")
        }
        guard headerStart + headerLength <= bytes.count,
              let header = String(bytes: bytes[headerStart..<headerStart + headerLength], encoding: major == 3 ? .utf8 : .isoLatin1)
        else { throw fail("truncated header") }

        guard let descr = field("descr", in: header) else { throw fail("header has no 'descr'") }
        let dtype = descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\" "))
        guard dtype == "<f4" || dtype == "=f4" || dtype == "f4" else {
            throw fail("dtype is \(dtype), expected float32 ('<f4'); convert with .astype(numpy.float32)")
        }
        guard let fortran = field("fortran_order", in: header) else { throw fail("header has no 'fortran_order'") }
        guard fortran.trimmingCharacters(in: .whitespaces) == "False" else { throw fail("array is in Fortran order, expected C order") }
        guard let shapeText = field("shape", in: header) else { throw fail("header has no 'shape'") }
        let shape = try parseShape(shapeText, fail: fail)

        let count = shape.reduce(1, *)
        let dataStart = headerStart + headerLength
        guard bytes.count - dataStart == count * 4 else {
            throw fail("shape \(shape) needs \(count * 4) bytes of data, the file has \(bytes.count - dataStart)")
        }
        let values = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                let src = raw.baseAddress!.advanced(by: dataStart)
                for i in 0..<count {
                    buffer[i] = Float(bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
            }
            initialized = count
        }
        return NPYArray(shape: shape, values: values)
    }

    /// The bytes of a version 1.0 `.npy` file holding `values` with `shape` (float32, C order).
    public static func encode(_ array: NPYArray) -> [UInt8] {
        let shapeText = array.shape.count == 1 ? "(\(array.shape[0]),)" : "(" + array.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shapeText), }"
        // The header, with its 10 leading bytes, is padded with spaces to a multiple of 64 and ends in a newline.
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let headerBytes = Array(header.utf8)
        var out = magic + [1, 0, UInt8(headerBytes.count & 0xFF), UInt8(headerBytes.count >> 8)] + headerBytes
        out.reserveCapacity(out.count + array.values.count * 4)
        for v in array.values {
            let bits = v.bitPattern.littleEndian
            out.append(UInt8(bits & 0xFF)); out.append(UInt8((bits >> 8) & 0xFF))
            out.append(UInt8((bits >> 16) & 0xFF)); out.append(UInt8(bits >> 24))
        }
        return out
    }

    /// Writes `array` to `url` as a `.npy` file.
    public static func write(_ array: NPYArray, to url: URL) throws(NPYError) {
        do { try Data(encode(array)).write(to: url) } catch {
            throw NPYError("write_failed", "cannot write \(url.path): \(error.localizedDescription)")
        }
    }

    /// The text after `'key':` in the header dict, up to the next top-level comma or closing brace.
    private static func field(_ key: String, in header: String) -> String? {
        guard let keyRange = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[keyRange.upperBound...].drop { $0 == " " }
        guard rest.first == ":" else { return nil }
        rest = rest.dropFirst().drop { $0 == " " }
        var depth = 0
        var end = rest.startIndex
        while end < rest.endIndex {
            let c = rest[end]
            if c == "(" || c == "[" { depth += 1 }
            if c == ")" || c == "]" { depth -= 1 }
            if depth == 0 && (c == "," || c == "}") { break }
            if depth < 0 { break }
            end = rest.index(after: end)
        }
        if end < rest.endIndex && rest[end] == ")" { end = rest.index(after: end) }
        return String(rest[rest.startIndex..<end])
    }

    private static func parseShape(_ text: String, fail: (String) -> NPYError) throws(NPYError) -> [Int] {
        let inner = text.trimmingCharacters(in: CharacterSet(charactersIn: "() "))
        if inner.isEmpty { return [] }
        var shape: [Int] = []
        for part in inner.split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            if t.isEmpty { continue }
            guard let d = Int(t.hasSuffix("L") ? String(t.dropLast()) : t), d >= 0 else { throw fail("bad shape \(text)") }
            shape.append(d)
        }
        return shape
    }
}
