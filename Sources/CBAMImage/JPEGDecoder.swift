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
    /// `timeBudget`: how long the decode may take (nil: no limit).
    func decode(_ bytes: [UInt8], targetShorterSide: Int?, timeBudget: Duration?) throws(ImageError) -> Decoded {
        var options = CBAMJPEGOptions(
            max_pixels: UInt64(clamping: limits.maxPixels),
            max_side: UInt32(clamping: limits.maxSide),
            target_shorter_side: UInt32(clamping: max(0, targetShorterSide ?? 0)),
            max_scans: UInt32(clamping: limits.maxScans),
            time_budget_ns: timeBudget.map(budgetNanoseconds) ?? 0)
        // The header is read once: the decoder it opens knows the exact size, the buffer is allocated once, and
        // libjpeg writes into it (no copy).
        var result = CBAMJPEGImage()
        var status = CBAM_JPEG_OK
        var pixels: [UInt8] = []
        bytes.withUnsafeBufferPointer { data in
            guard let decoder = cbam_jpeg_open(data.baseAddress, data.count, &options, &result) else {
                status = result.status
                return
            }
            defer { cbam_jpeg_close(decoder) }
            let count = Int(result.width) * Int(result.height) * 3
            pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                status = cbam_jpeg_read_pixels(decoder, buffer.baseAddress, count, &result)
                initialized = status == CBAM_JPEG_OK ? count : 0
            }
        }
        guard status == CBAM_JPEG_OK else { throw JPEGDecoder.error(status, message: cString(&result.message)) }
        let image = RGBImage(width: Int(result.width), height: Int(result.height), pixels: pixels,
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
        case CBAM_JPEG_TIMED_OUT: return .decodeTimedOut(message)
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

/// A time budget for the C decoders: at least 1 ns (0 would mean no limit), so a budget already spent still stops
/// the decode at its first check.
func budgetNanoseconds(_ budget: Duration) -> UInt64 {
    let (seconds, attoseconds) = budget.components
    guard seconds >= 0, attoseconds >= 0 else { return 1 }
    return max(1, UInt64(clamping: seconds).multipliedReportingOverflow(by: 1_000_000_000).partialValue
                  + UInt64(attoseconds / 1_000_000_000))
}
