import CJPEG

/// libjpeg(-turbo) through the CJPEG target: RGB8 pixels exactly as PIL decodes them.
struct JPEGDecoder {
    let limits: ImageLimits

    struct Decoded {
        var image: RGBImage
        var sourceWidth: Int, sourceHeight: Int
        var scaleDenominator: Int
    }

    /// `targetShorterSide`: decode at 1/2, 1/4 or 1/8 (DCT scaling) while the shorter side stays >= it.
    func decode(_ bytes: [UInt8], targetShorterSide: Int?) throws(ImageError) -> Decoded {
        var options = CBAMJPEGOptions(
            max_pixels: UInt64(clamping: limits.maxPixels),
            max_side: UInt32(clamping: limits.maxSide),
            target_shorter_side: UInt32(clamping: max(0, targetShorterSide ?? 0)),
            max_scans: UInt32(clamping: limits.maxScans))
        var result = CBAMJPEGImage()
        let status = bytes.withUnsafeBufferPointer { cbam_jpeg_decode($0.baseAddress, $0.count, &options, &result) }
        defer { cbam_jpeg_release(&result) }
        guard status == CBAM_JPEG_OK, let pointer = result.pixels else {
            throw JPEGDecoder.error(status, message: cString(&result.message))
        }
        let count = Int(result.width) * Int(result.height) * 3
        let image = RGBImage(width: Int(result.width), height: Int(result.height),
                             pixels: Array(UnsafeBufferPointer(start: pointer, count: count)),
                             scaleDenominator: Int(result.scale_denom),
                             fullWidth: Int(result.source_width), fullHeight: Int(result.source_height))
        return Decoded(image: image, sourceWidth: Int(result.source_width), sourceHeight: Int(result.source_height),
                       scaleDenominator: Int(result.scale_denom))
    }

    static func error(_ status: CBAMJPEGStatus, message: String) -> ImageError {
        switch status {
        case CBAM_JPEG_TRUNCATED: return .truncatedImage(message)
        case CBAM_JPEG_TOO_LARGE: return .imageTooLarge(message)
        case CBAM_JPEG_UNSUPPORTED: return .unsupportedImage(message)
        case CBAM_JPEG_OUT_OF_MEMORY: return .outOfMemory(message)
        case CBAM_JPEG_TOO_MANY_SCANS: return .imageTooComplex(message)
        default: return .corruptImage("corrupt JPEG: \(message)")
        }
    }
}

/// Reads a fixed-size C `char[N]` field as a String.
func cString<T>(_ tuple: inout T) -> String {
    withUnsafeBytes(of: &tuple) { raw in
        let bytes = raw.prefix { $0 != 0 }
        return String(decoding: bytes, as: UTF8.self)
    }
}
