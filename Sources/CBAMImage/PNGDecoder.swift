import CPNG

/// libpng through the CPNG target: RGB8 pixels exactly as PIL's `convert("RGB")` gives them.
struct PNGDecoder {
    let limits: ImageLimits

    func decode(_ bytes: [UInt8]) throws(ImageError) -> RGBImage {
        var options = CBAMPNGOptions(max_pixels: UInt64(clamping: limits.maxPixels),
                                     max_side: UInt32(clamping: limits.maxSide))
        var result = CBAMPNGImage()
        let status = bytes.withUnsafeBufferPointer { cbam_png_decode($0.baseAddress, $0.count, &options, &result) }
        defer { cbam_png_release(&result) }
        guard status == CBAM_PNG_OK, let pointer = result.pixels else {
            let message = cString(&result.message)
            switch status {
            case CBAM_PNG_TRUNCATED: throw .truncatedImage(message)
            case CBAM_PNG_TOO_LARGE: throw .imageTooLarge(message)
            case CBAM_PNG_OUT_OF_MEMORY: throw .outOfMemory(message)
            default: throw .corruptImage("corrupt PNG: \(message)")
            }
        }
        let count = Int(result.width) * Int(result.height) * 3
        return RGBImage(width: Int(result.width), height: Int(result.height),
                        pixels: Array(UnsafeBufferPointer(start: pointer, count: count)))
    }
}
