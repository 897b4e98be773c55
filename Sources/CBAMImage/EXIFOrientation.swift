/// The EXIF Orientation tag (0x0112) and the transpose that undoes it, as PIL's `ImageOps.exif_transpose`.
public enum EXIFOrientation: Int, Sendable {
    case normal = 1, mirrored = 2, rotated180 = 3, flipped = 4
    case transposed = 5, rotated90Clockwise = 6, transverse = 7, rotated90CounterClockwise = 8

    /// The orientation PIL's `getexif()` finds in a JPEG: tag 0x0112 of the first APP1 "Exif" segment, or
    /// else `tiff:Orientation` in the last XMP segment; `.normal` when absent or malformed.
    public static func inJPEG(_ bytes: [UInt8]) -> EXIFOrientation {
        guard bytes.count >= 4, bytes[0] == 0xFF, bytes[1] == 0xD8 else { return .normal }
        var exif: Int?, sawExif = false, xmp: Int?
        var i = 2
        walk: while i + 4 <= bytes.count {
            guard bytes[i] == 0xFF else { break }
            let marker = bytes[i + 1]
            if marker == 0xFF { i += 1; continue }                                   // fill byte
            if marker == 0x01 || (0xD0...0xD8).contains(marker) { i += 2; continue }  // no length
            if marker == 0xDA || marker == 0xD9 { break }                             // scan data follows
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            guard length >= 2, i + 2 + length <= bytes.count else { break walk }
            let payload = (i + 4)..<(i + 2 + length)
            if marker == 0xE1 {
                if !sawExif, starts(bytes, payload, with: exifHeader) {
                    sawExif = true
                    exif = orientationTag(bytes, from: payload.lowerBound + 6, to: payload.upperBound)
                } else if starts(bytes, payload, with: xmpHeader) {
                    xmp = xmpOrientation(bytes, payload.dropFirst(xmpHeader.count))
                }
            }
            i += 2 + length
        }
        return EXIFOrientation(rawValue: exif ?? xmp ?? 1) ?? .normal
    }

    /// The orientation in a PNG eXIf chunk (raw TIFF, as PIL reads it); `.normal` when absent or malformed.
    public static func inPNG(_ bytes: [UInt8]) -> EXIFOrientation {
        var i = 8
        while i + 12 <= bytes.count {
            let length = Int(readUInt32(bytes, i, bigEndian: true))
            guard length <= bytes.count - i - 12 else { return .normal }
            let type = bytes[(i + 4)..<(i + 8)]
            let data = (i + 8)..<(i + 8 + length)
            if type.elementsEqual("eXIf".utf8) {
                return EXIFOrientation(rawValue: orientationTag(bytes, from: data.lowerBound, to: data.upperBound) ?? 1)
                    ?? .normal
            }
            if type.elementsEqual("IEND".utf8) { return .normal }
            i += 12 + length
        }
        return .normal
    }

    static let exifHeader = Array("Exif\0\0".utf8)
    static let xmpHeader = Array("http://ns.adobe.com/xap/1.0/\0".utf8)

    private static func starts(_ bytes: [UInt8], _ range: Range<Int>, with prefix: [UInt8]) -> Bool {
        range.count >= prefix.count && bytes[range.prefix(prefix.count)].elementsEqual(prefix)
    }

    /// PIL's rule: the digit after the first `tiff:Orientation="` or `tiff:Orientation>`.
    static func xmpOrientation(_ bytes: [UInt8], _ range: Range<Int>) -> Int? {
        let key = Array("tiff:Orientation".utf8)
        var i = range.lowerBound
        while i + key.count + 2 <= range.upperBound {
            if bytes[i] == key[0], bytes[i..<(i + key.count)].elementsEqual(key) {
                var j = i + key.count
                if bytes[j] == UInt8(ascii: "=") && bytes[j + 1] == UInt8(ascii: "\"") { j += 2 }
                else if bytes[j] == UInt8(ascii: ">") { j += 1 }
                else { i += 1; continue }
                if j < range.upperBound, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[j]) {
                    return Int(bytes[j] - UInt8(ascii: "0"))
                }
            }
            i += 1
        }
        return nil
    }

    /// `.normal` unless the TIFF structure in `bytes[start..<end]` has a valid orientation tag.
    static func inTIFF(_ bytes: [UInt8], from start: Int, to end: Int) -> EXIFOrientation {
        EXIFOrientation(rawValue: orientationTag(bytes, from: start, to: end) ?? 1) ?? .normal
    }

    /// The value of tag 0x0112 in IFD0 of the TIFF structure in `bytes[start..<end]`, every offset bounds-checked.
    static func orientationTag(_ bytes: [UInt8], from start: Int, to end: Int) -> Int? {
        guard end - start >= 8 else { return nil }
        let bigEndian: Bool
        switch (bytes[start], bytes[start + 1]) {
        case (0x49, 0x49): bigEndian = false
        case (0x4D, 0x4D): bigEndian = true
        default: return nil
        }
        guard readUInt16(bytes, start + 2, bigEndian: bigEndian) == 42 else { return nil }
        let ifd = Int(readUInt32(bytes, start + 4, bigEndian: bigEndian))
        guard ifd >= 8, ifd <= end - start - 2 else { return nil }
        let count = Int(readUInt16(bytes, start + ifd, bigEndian: bigEndian))
        for entry in 0..<count {
            let at = start + ifd + 2 + entry * 12
            guard at + 12 <= end else { return nil }
            guard readUInt16(bytes, at, bigEndian: bigEndian) == 0x0112 else { continue }
            let type = readUInt16(bytes, at + 2, bigEndian: bigEndian)
            let value: Int
            switch type {
            case 3: value = Int(readUInt16(bytes, at + 8, bigEndian: bigEndian))  // SHORT
            case 4: value = Int(readUInt32(bytes, at + 8, bigEndian: bigEndian))  // LONG
            default: return nil
            }
            return value
        }
        return nil
    }

    private static func readUInt16(_ b: [UInt8], _ i: Int, bigEndian: Bool) -> UInt16 {
        bigEndian ? UInt16(b[i]) << 8 | UInt16(b[i + 1]) : UInt16(b[i + 1]) << 8 | UInt16(b[i])
    }

    private static func readUInt32(_ b: [UInt8], _ i: Int, bigEndian: Bool) -> UInt32 {
        let (x0, x1, x2, x3) = (UInt32(b[i]), UInt32(b[i + 1]), UInt32(b[i + 2]), UInt32(b[i + 3]))
        return bigEndian ? x0 << 24 | x1 << 16 | x2 << 8 | x3 : x3 << 24 | x2 << 16 | x1 << 8 | x0
    }

    /// Returns the image as it should be displayed (PIL: FLIP_LEFT_RIGHT, ROTATE_180, ..., ROTATE_90).
    public func apply(to image: RGBImage) -> RGBImage {
        if self == .normal { return image }
        let (w, h) = (image.width, image.height)
        let swapsSides = rawValue >= 5
        let (outW, outH) = swapsSides ? (h, w) : (w, h)
        // Source pixel of output (x, y).
        let source: (Int, Int) -> (Int, Int)
        switch self {
        case .normal: source = { ($0, $1) }
        case .mirrored: source = { (w - 1 - $0, $1) }
        case .rotated180: source = { (w - 1 - $0, h - 1 - $1) }
        case .flipped: source = { ($0, h - 1 - $1) }
        case .transposed: source = { ($1, $0) }
        case .rotated90Clockwise: source = { ($1, h - 1 - $0) }
        case .transverse: source = { (w - 1 - $1, h - 1 - $0) }
        case .rotated90CounterClockwise: source = { (w - 1 - $1, $0) }
        }
        let pixels = [UInt8](unsafeUninitializedCapacity: outW * outH * 3) { out, initialized in
            image.pixels.withUnsafeBufferPointer { input in
                var o = 0
                for y in 0..<outH {
                    for x in 0..<outW {
                        let (sx, sy) = source(x, y)
                        let s = (sy * w + sx) * 3
                        out[o] = input[s]
                        out[o + 1] = input[s + 1]
                        out[o + 2] = input[s + 2]
                        o += 3
                    }
                }
            }
            initialized = outW * outH * 3
        }
        let (fullW, fullH) = swapsSides ? (image.fullHeight, image.fullWidth) : (image.fullWidth, image.fullHeight)
        // Where each output axis comes from (the input's x or y axis) and whether it runs backwards.
        let (fx, fy) = (image.partialBlockFirstX, image.partialBlockFirstY)
        let partialFirst: (x: Bool, y: Bool)
        switch self {
        case .normal: partialFirst = (fx, fy)
        case .mirrored: partialFirst = (!fx, fy)
        case .rotated180: partialFirst = (!fx, !fy)
        case .flipped: partialFirst = (fx, !fy)
        case .transposed: partialFirst = (fy, fx)
        case .rotated90Clockwise: partialFirst = (!fy, fx)
        case .transverse: partialFirst = (!fy, !fx)
        case .rotated90CounterClockwise: partialFirst = (fy, !fx)
        }
        return RGBImage(width: outW, height: outH, pixels: pixels, scaleDenominator: image.scaleDenominator,
                        fullWidth: fullW, fullHeight: fullH,
                        partialBlockFirstX: partialFirst.x, partialBlockFirstY: partialFirst.y)
    }
}
