import CPNG

/// libpng through the CPNG target: RGB8 pixels exactly as PIL's `convert("RGB")` gives them.
struct PNGDecoder {
    let limits: ImageLimits

    /// `timeBudget`: how long the decode may take (nil: no limit).
    func decode(_ bytes: [UInt8], timeBudget: Duration?) throws(ImageError) -> RGBImage {
        var options = CBAMPNGOptions(max_pixels: UInt64(clamping: limits.maxPixels),
                                     max_side: UInt32(clamping: limits.maxSide),
                                     time_budget_ns: timeBudget.map(budgetNanoseconds) ?? 0)
        var header = CBAMPNGImage()
        let headerStatus = bytes.withUnsafeBufferPointer {
            cbam_png_read_header($0.baseAddress, $0.count, &options, &header)
        }
        guard headerStatus == CBAM_PNG_OK else { throw PNGDecoder.error(headerStatus, message: cString(&header.message)) }
        // The limits held, so the exact buffer is allocated once and libpng's rows are converted into it.
        let count = Int(header.width) * Int(header.height) * 3
        var result = CBAMPNGImage()
        var status = CBAM_PNG_OK
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            status = bytes.withUnsafeBufferPointer {
                cbam_png_decode_into($0.baseAddress, $0.count, &options, buffer.baseAddress, count, &result)
            }
            initialized = status == CBAM_PNG_OK ? count : 0
        }
        guard status == CBAM_PNG_OK else { throw PNGDecoder.error(status, message: cString(&result.message)) }
        return RGBImage(width: Int(result.width), height: Int(result.height), pixels: pixels)
    }

    static func error(_ status: CBAMPNGStatus, message: String) -> ImageError {
        switch status {
        case CBAM_PNG_TRUNCATED: return .truncatedImage(message)
        case CBAM_PNG_TOO_LARGE: return .imageTooLarge(message)
        case CBAM_PNG_OUT_OF_MEMORY: return .outOfMemory(message)
        case CBAM_PNG_TOO_COMPLEX: return .imageTooComplex(message)
        case CBAM_PNG_TIMED_OUT: return .decodeTimedOut(message)
        default: return .corruptImage("corrupt PNG: \(message)")
        }
    }
}
