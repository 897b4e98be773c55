/// Decoded pixels: 8-bit RGB, rows top to bottom, no padding (HWC).
public struct RGBImage: Sendable, Equatable {
    public let width: Int
    public let height: Int
    /// `width * height * 3` bytes, R G B per pixel.
    public let pixels: [UInt8]
    /// 1, or 2/4/8 when a JPEG was decoded at that fraction of its size (DCT scaling).
    public let scaleDenominator: Int
    /// Size of the full-resolution image these pixels stand for (after orientation); equals width/height when
    /// `scaleDenominator` is 1. The preprocessor resizes as torchvision would from this size.
    public let fullWidth: Int
    public let fullHeight: Int
    /// After a flip or rotation, the partial last block of a DCT-scaled decode (the pixel that stands for
    /// fewer than `scaleDenominator` full pixels) lies at the start of that axis instead of its end.
    let partialBlockFirstX: Bool
    let partialBlockFirstY: Bool

    public init(width: Int, height: Int, pixels: [UInt8]) {
        self.init(width: width, height: height, pixels: pixels, scaleDenominator: 1, fullWidth: width, fullHeight: height)
    }

    public init(width: Int, height: Int, pixels: [UInt8], scaleDenominator: Int, fullWidth: Int, fullHeight: Int) {
        self.init(width: width, height: height, pixels: pixels, scaleDenominator: scaleDenominator,
                  fullWidth: fullWidth, fullHeight: fullHeight, partialBlockFirstX: false, partialBlockFirstY: false)
    }

    init(width: Int, height: Int, pixels: [UInt8], scaleDenominator: Int, fullWidth: Int, fullHeight: Int,
         partialBlockFirstX: Bool, partialBlockFirstY: Bool) {
        precondition(width >= 0 && height >= 0 && pixels.count == width * height * 3,
                     "RGBImage needs width*height*3 bytes")
        precondition([1, 2, 4, 8].contains(scaleDenominator), "scaleDenominator is 1, 2, 4 or 8")
        self.width = width
        self.height = height
        self.pixels = pixels
        self.scaleDenominator = scaleDenominator
        self.fullWidth = fullWidth
        self.fullHeight = fullHeight
        self.partialBlockFirstX = partialBlockFirstX
        self.partialBlockFirstY = partialBlockFirstY
    }
}
