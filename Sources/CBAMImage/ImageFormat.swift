/// The formats the decoder reads, recognised from the bytes themselves (never a file name or Content-Type).
public enum ImageFormat: String, Sendable, Equatable {
    case jpeg
    case png

    public static func sniff(_ bytes: [UInt8]) -> ImageFormat? {
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return .jpeg }
        if bytes.starts(with: pngSignature) { return .png }
        return nil
    }

    static let pngSignature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The bytes are a proper prefix of a JPEG or PNG signature: a file cut short, not another format.
    static func isTruncatedSignature(_ bytes: [UInt8]) -> Bool {
        !bytes.isEmpty && ((bytes.count < 3 && [0xFF, 0xD8, 0xFF].starts(with: bytes)) ||
                           (bytes.count < 8 && pngSignature.starts(with: bytes)))
    }

    /// Names a format we recognise but do not decode, for the error message.
    static func describeUnsupported(_ bytes: [UInt8]) -> String {
        func has(_ prefix: String, at offset: Int = 0) -> Bool {
            let p = Array(prefix.utf8)
            return bytes.count >= offset + p.count && Array(bytes[offset..<offset + p.count]) == p
        }
        let name: String?
        if has("GIF87a") || has("GIF89a") { name = "GIF" }
        else if has("RIFF") && has("WEBP", at: 8) { name = "WebP" }
        else if has("BM") { name = "BMP" }
        else if has("II*\0") || has("MM\0*") { name = "TIFF" }
        else if has("ftyp", at: 4) { name = "HEIF/AVIF" }
        else if bytes.starts(with: [0xFF, 0xD8]) { name = "JPEG-like (FF D8 without a marker after it)" }
        else if bytes.prefix(64).allSatisfy({ $0 == 9 || $0 == 10 || $0 == 13 || (32..<127).contains($0) }) { name = "text" }
        else { name = nil }
        let found = name.map { "\($0) data" } ?? "data that is neither JPEG nor PNG"
        return "unsupported image format: found \(found); expected JPEG or PNG"
    }
}
