import CPNG

/// PNG files from 8-bit pixels through libpng (attention heat-maps).
public enum PNGEncoder {
    /// `rgb`: width*height*3 bytes, rows top to bottom.
    public static func encode(rgb: [UInt8], width: Int, height: Int, compressionLevel: Int = 6) throws(ImageError) -> [UInt8] {
        try encode(pixels: rgb, width: width, height: height, channels: 3, compressionLevel: compressionLevel)
    }

    /// `rgba`: width*height*4 bytes, rows top to bottom, alpha not premultiplied.
    public static func encode(rgba: [UInt8], width: Int, height: Int, compressionLevel: Int = 6) throws(ImageError) -> [UInt8] {
        try encode(pixels: rgba, width: width, height: height, channels: 4, compressionLevel: compressionLevel)
    }

    /// `gray`: width*height bytes.
    public static func encode(gray: [UInt8], width: Int, height: Int, compressionLevel: Int = 6) throws(ImageError) -> [UInt8] {
        try encode(pixels: gray, width: width, height: height, channels: 1, compressionLevel: compressionLevel)
    }

    static func encode(pixels: [UInt8], width: Int, height: Int, channels: Int,
                       compressionLevel: Int) throws(ImageError) -> [UInt8] {
        guard width > 0, height > 0, pixels.count == width * height * channels else {
            throw ImageError(code: "invalid_image",
                             message: "cannot encode PNG: \(pixels.count) bytes given for \(width)x\(height) " +
                                      "with \(channels) channels (expected \(max(0, width * height * channels)))")
        }
        var result = CBAMPNGEncoded()
        let status = pixels.withUnsafeBufferPointer {
            cbam_png_encode($0.baseAddress, Int32(clamping: width), Int32(clamping: height), Int32(channels),
                            Int32(clamping: compressionLevel), &result)
        }
        defer { cbam_png_release_encoded(&result) }
        guard status == CBAM_PNG_OK, let bytes = result.bytes else {
            throw ImageError(code: status == CBAM_PNG_OUT_OF_MEMORY ? "out_of_memory" : "invalid_image",
                             message: "cannot encode PNG: \(cString(&result.message))")
        }
        return Array(UnsafeBufferPointer(start: bytes, count: result.size))
    }
}
