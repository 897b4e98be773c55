/// Checked against the header before any pixel buffer is allocated.
public struct ImageLimits: Sendable, Equatable {
    /// Largest width * height accepted (default 50 megapixels).
    public var maxPixels: Int
    /// Largest width or height accepted.
    public var maxSide: Int
    /// Largest number of scans in a progressive JPEG (each scan re-decodes the image; 0 = no limit).
    public var maxScans: Int

    public init(maxPixels: Int = 50_000_000, maxSide: Int = 20_000, maxScans: Int = 1_000) {
        self.maxPixels = maxPixels
        self.maxSide = maxSide
        self.maxScans = maxScans
    }

    public static let `default` = ImageLimits()
}
