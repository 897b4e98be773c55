/// RGB8 pixels → the model's input: torchvision's
/// `Compose([Resize(resize), CenterCrop(size), ToTensor(), Normalize(mean, std)])` on a PIL RGB image,
/// giving float32 CHW `[3, size, size]`.
public struct Preprocessor: Sendable {
    public let size: Int
    public let resize: Int
    public let mean: [Float]
    public let std: [Float]

    public init(size: Int, resize: Int, mean: [Float], std: [Float]) {
        precondition(size > 0 && resize > 0, "size and resize must be positive")
        precondition(mean.count == 3 && std.count == 3 && std.allSatisfy { $0 != 0 },
                     "mean and std need 3 values, std non-zero")
        self.size = size
        self.resize = resize
        self.mean = mean
        self.std = std
    }

    /// Number of floats in one image's tensor.
    public var elementCount: Int { 3 * size * size }

    /// torchvision's Resize(int): the shorter side becomes `resize`, the longer `int(resize * long / short)`.
    public func resizedSize(width: Int, height: Int) -> (width: Int, height: Int) {
        let (short, long) = width <= height ? (width, height) : (height, width)
        let newLong = Int(Double(resize * long) / Double(short))
        return width <= height ? (resize, newLong) : (newLong, resize)
    }

    /// torchvision's CenterCrop offset: `int(round((extent - size) / 2))` with Python's round-half-to-even;
    /// negative when the image is smaller and gets zero-padded by `(size - extent) // 2` first.
    public func cropOffset(_ extent: Int) -> Int {
        if extent < size { return -((size - extent) / 2) }
        let twice = extent - size
        let half = twice / 2
        return twice % 2 == 0 || half % 2 == 0 ? half : half + 1
    }

    public func tensor(_ image: RGBImage) -> [Float] {
        [Float](unsafeUninitializedCapacity: elementCount) { buffer, initialized in
            write(image, into: buffer.baseAddress!)
            initialized = elementCount
        }
    }

    /// Writes `elementCount` floats (CHW) at `output`, e.g. one slot of a batch.
    public func write(_ image: RGBImage, into output: UnsafeMutablePointer<Float>) {
        precondition(image.width > 0 && image.height > 0, "cannot preprocess an empty image")
        // A DCT-scaled image is resized as the full image would be: same output size, and each scaled pixel
        // spans `scaleDenominator` full pixels (PIL's resize `box`), so sampling positions line up.
        let (outW, outH) = resizedSize(width: image.fullWidth, height: image.fullHeight)
        let left = cropOffset(outW), top = cropOffset(outH)
        // The part of the resized image inside the crop; outside it (only when padding) pixels are 0.
        let columns = max(left, 0)..<min(left + size, outW)
        let rows = max(top, 0)..<min(top + size, outH)
        let window: [UInt8]
        if outW == image.width && outH == image.height && image.scaleDenominator == 1 {
            window = AntialiasedBilinear.copy(image, columns: columns, rows: rows)
        } else {
            let scale = Double(image.scaleDenominator)
            let boxWidth = Double(image.fullWidth) / scale, boxHeight = Double(image.fullHeight) / scale
            // The box ends at the partial block: at the far edge, or at the near one after a flip.
            let box = (x0: image.partialBlockFirstX ? Double(image.width) - boxWidth : 0,
                       y0: image.partialBlockFirstY ? Double(image.height) - boxHeight : 0,
                       width: boxWidth, height: boxHeight)
            window = AntialiasedBilinear.resize(image, box: box, outWidth: outW, outHeight: outH,
                                                columns: columns, rows: rows)
        }
        let plane = size * size
        window.withUnsafeBufferPointer { pixels in
            for c in 0..<3 {
                let m = mean[c], s = std[c]
                let zero = (0 - m) / s
                let channel = output + c * plane
                for y in 0..<size {
                    let row = channel + y * size
                    let sy = top + y
                    guard rows.contains(sy) else {
                        row.update(repeating: zero, count: size)
                        continue
                    }
                    let windowRow = (sy - rows.lowerBound) * columns.count
                    for x in 0..<size {
                        let sx = left + x
                        if columns.contains(sx) {
                            let v = pixels[(windowRow + sx - columns.lowerBound) * 3 + c]
                            // ToTensor then Normalize, both in float32 as torch computes them.
                            row[x] = (Float(v) / 255 - m) / s
                        } else {
                            row[x] = zero
                        }
                    }
                }
            }
        }
    }
}

extension AntialiasedBilinear {
    /// The window of an image that needs no resizing.
    static func copy(_ image: RGBImage, columns: Range<Int>, rows: Range<Int>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(columns.count * rows.count * 3)
        for y in rows {
            let start = (y * image.width + columns.lowerBound) * 3
            out.append(contentsOf: image.pixels[start..<(start + columns.count * 3)])
        }
        return out
    }
}
