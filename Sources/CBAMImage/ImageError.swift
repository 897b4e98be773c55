/// Why bytes could not become an image: a stable snake_case `code` for clients and a sentence for people.
public struct ImageError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: String
    public let message: String

    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }

    public static func emptyImage() -> ImageError {
        ImageError(code: "empty_image", message: "the image is empty (0 bytes)")
    }
    public static func unsupportedFormat(_ message: String) -> ImageError {
        ImageError(code: "unsupported_format", message: message)
    }
    public static func corruptImage(_ message: String) -> ImageError {
        ImageError(code: "corrupt_image", message: message)
    }
    public static func truncatedImage(_ message: String) -> ImageError {
        ImageError(code: "truncated_image", message: message)
    }
    public static func imageTooLarge(_ message: String) -> ImageError {
        ImageError(code: "image_too_large", message: message)
    }
    /// A valid file this decoder does not handle (e.g. a 2-component JPEG).
    public static func unsupportedImage(_ message: String) -> ImageError {
        ImageError(code: "unsupported_image", message: message)
    }
    /// A file whose decoding would cost out of proportion to the image it declares: a progressive JPEG with more
    /// scans than `ImageLimits.maxScans`, a PNG whose compressed data inflates far past its last row or whose
    /// decoder would need more memory than its rows.
    public static func imageTooComplex(_ message: String) -> ImageError {
        ImageError(code: "image_too_complex", message: message)
    }
    /// The decode's time budget (the request's deadline) ran out.
    public static func decodeTimedOut(_ message: String) -> ImageError {
        ImageError(code: "decode_timeout", message: message)
    }
    public static func outOfMemory(_ message: String) -> ImageError {
        ImageError(code: "out_of_memory", message: message)
    }
}
