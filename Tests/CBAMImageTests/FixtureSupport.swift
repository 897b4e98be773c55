import Foundation

/// The fixtures written by tools/make_image_fixtures.py, as listed in Fixtures/manifest.json.
enum Fixtures {
    static let directory: URL = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!

    struct DecodeCase: Decodable, Sendable, CustomStringConvertible {
        let file: String, reference: String, note: String
        let exif_transpose: Bool
        var description: String { file }
    }

    struct ErrorCase: Decodable, Sendable, CustomStringConvertible {
        let file: String, code: String, note: String
        let max_scans: Int?
        var description: String { file }
    }

    struct PreprocessCase: Decodable, Sendable, CustomStringConvertible {
        let file: String, reference: String
        let resize: Int, size: Int
        let mean: [Double], std: [Double]
        var description: String { "\(file) resize \(resize) crop \(size)" }
    }

    struct Manifest: Decodable, Sendable {
        let decode: [DecodeCase]
        let errors: [ErrorCase]
        let preprocess: [PreprocessCase]
    }

    static let manifest: Manifest = {
        let data = try! Data(contentsOf: directory.appendingPathComponent("manifest.json"))
        return try! JSONDecoder().decode(Manifest.self, from: data)
    }()

    static func bytes(_ path: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(path)))
    }
}

/// A NumPy .npy array (version 1/2 header, little-endian, C order): only what the fixtures use.
struct ReferenceArray {
    let dtype: String
    let shape: [Int]
    let data: [UInt8]

    init(path: String) throws {
        let bytes = try Fixtures.bytes(path)
        guard bytes.count > 10, bytes.starts(with: [0x93] + Array("NUMPY".utf8)) else { throw ReferenceArrayError.bad(path) }
        let major = bytes[6]
        let headerLength = major == 1 ? Int(bytes[8]) | Int(bytes[9]) << 8
                                      : Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
        let headerStart = major == 1 ? 10 : 12
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        func field(_ key: String) -> String? {
            guard let r = header.range(of: "'\(key)': ") else { return nil }
            return String(header[r.upperBound...])
        }
        guard let d = field("descr"), let s = field("shape"), field("fortran_order")?.hasPrefix("False") == true
        else { throw ReferenceArrayError.bad(path) }
        dtype = String(d.dropFirst().prefix { $0 != "'" })
        let inside = s.dropFirst().prefix { $0 != ")" }
        shape = inside.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        data = Array(bytes[(headerStart + headerLength)...])
    }

    var uint8: [UInt8] { precondition(dtype == "|u1"); return data }

    var float32: [Float] {
        precondition(dtype == "<f4")
        return data.withUnsafeBytes { raw in (0..<(data.count / 4)).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) } }
    }
}

enum ReferenceArrayError: Error { case bad(String) }

/// Resident set size of this process, in bytes (Linux /proc/self/statm).
func residentBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return fields.count > 1 ? (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE))) : 0
}
