/// Uploaded bytes → RGB8 pixels, as `PIL.Image.open(f).convert("RGB")` (then `ImageOps.exif_transpose`) gives them.
public struct ImageDecoder: Sendable {
    public var limits: ImageLimits
    /// Apply the EXIF orientation (config `input.exif_transpose`).
    public var exifTranspose: Bool

    public init(limits: ImageLimits = .default, exifTranspose: Bool = true) {
        self.limits = limits
        self.exifTranspose = exifTranspose
    }

    /// What was decoded and how.
    public struct Decoded: Sendable {
        public let image: RGBImage
        public let format: ImageFormat
        /// Size in the file, before DCT scaling and orientation.
        public let sourceWidth: Int
        public let sourceHeight: Int
        /// 1 for a full decode; 2, 4 or 8 when a JPEG was decoded with DCT scaling.
        public let scaleDenominator: Int
        public let orientation: EXIFOrientation
    }

    /// `targetShorterSide` (the preprocessor's `resize`) lets a JPEG at least 2, 4 or 8 times the target
    /// decode at 1/2, 1/4 or 1/8 of its size (libjpeg DCT scaling); nil decodes every pixel. Full decoding
    /// plus `Preprocessor` is bit-exact with torchvision; scaled decoding differs by 0.1 to 1.5 levels on
    /// average (measured, see Tests/CBAMImageTests/Fixtures/README.md) for about 3x less libjpeg time at 1/8.
    ///
    /// `timeBudget` bounds the decode's time (the request's deadline): past it, the decoder stops at its next row
    /// and throws `decode_timeout`.
    public func decode(_ bytes: [UInt8], targetShorterSide: Int? = nil, timeBudget: Duration? = nil) throws(ImageError) -> RGBImage {
        try decodeWithDetails(bytes, targetShorterSide: targetShorterSide, timeBudget: timeBudget).image
    }

    public func decodeWithDetails(_ bytes: [UInt8], targetShorterSide: Int? = nil,
                                  timeBudget: Duration? = nil) throws(ImageError) -> Decoded {
        if bytes.isEmpty { throw .emptyImage() }
        guard let format = ImageFormat.sniff(bytes) else {
            if ImageFormat.isTruncatedSignature(bytes) {
                throw .truncatedImage("the data ends inside the JPEG/PNG signature (\(bytes.count) bytes)")
            }
            throw .unsupportedFormat(ImageFormat.describeUnsupported(bytes))
        }
        var image: RGBImage
        var sourceWidth: Int, sourceHeight: Int, scale = 1
        let orientation: EXIFOrientation
        switch format {
        case .jpeg:
            let decoded = try JPEGDecoder(limits: limits).decode(bytes, targetShorterSide: targetShorterSide,
                                                             timeBudget: timeBudget)
            image = decoded.image
            (sourceWidth, sourceHeight, scale) = (decoded.sourceWidth, decoded.sourceHeight, decoded.scaleDenominator)
            orientation = exifTranspose ? EXIFOrientation.inJPEG(bytes) : .normal
        case .png:
            image = try PNGDecoder(limits: limits).decode(bytes, timeBudget: timeBudget)
            (sourceWidth, sourceHeight) = (image.width, image.height)
            orientation = exifTranspose ? EXIFOrientation.inPNG(bytes) : .normal
        }
        image = orientation.apply(to: image)
        return Decoded(image: image, format: format, sourceWidth: sourceWidth, sourceHeight: sourceHeight,
                       scaleDenominator: scale, orientation: orientation)
    }
}
