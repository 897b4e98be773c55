/// A colour scale from a value in [0, 1] to RGB8.
public enum Colormap: String, Sendable, CaseIterable {
    case jet, inferno, gray

    public func color(_ t: Float) -> (UInt8, UInt8, UInt8) {
        let t = t.isFinite ? min(max(t, 0), 1) : 0
        switch self {
        case .gray:
            let v = byte(t)
            return (v, v, v)
        case .jet:
            // Piecewise-linear blue → cyan → yellow → red, as MATLAB's jet.
            func ramp(_ x: Float) -> UInt8 { byte(min(max(1.5 - abs(4 * t - x), 0), 1)) }
            return (ramp(3), ramp(2), ramp(1))
        case .inferno:
            let scaled = t * Float(Self.infernoStops.count - 1)
            let i = min(Int(scaled), Self.infernoStops.count - 2)
            let f = scaled - Float(i)
            let a = Self.infernoStops[i], b = Self.infernoStops[i + 1]
            func mix(_ x: UInt8, _ y: UInt8) -> UInt8 { UInt8((Float(x) * (1 - f) + Float(y) * f).rounded()) }
            return (mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
        }
    }

    // matplotlib's inferno sampled at nine evenly spaced points; linear in between.
    private static let infernoStops: [(UInt8, UInt8, UInt8)] = [
        (0, 0, 4), (31, 12, 72), (85, 15, 109), (136, 34, 106), (186, 54, 85),
        (227, 89, 51), (249, 140, 10), (249, 201, 50), (252, 255, 164),
    ]
}

private func byte(_ x: Float) -> UInt8 { UInt8((min(max(x, 0), 1) * 255).rounded()) }

/// Turns a spatial attention map into a picture of where the model looked.
public enum HeatMap {
    /// Bilinear resize of a [height, width] map to [outHeight, outWidth], sampling at pixel centres
    /// (PyTorch's `interpolate(mode="bilinear", align_corners=False)`).
    public static func upsample(_ map: [Float], height: Int, width: Int, toHeight outHeight: Int, width outWidth: Int)
        -> [Float]
    {
        precondition(map.count == height * width && height > 0 && width > 0, "map is not [\(height), \(width)]")
        var out = [Float](repeating: 0, count: outHeight * outWidth)
        let scaleY = Float(height) / Float(outHeight), scaleX = Float(width) / Float(outWidth)
        for y in 0..<outHeight {
            let sy = max((Float(y) + 0.5) * scaleY - 0.5, 0)
            let y0 = min(Int(sy), height - 1), y1 = min(y0 + 1, height - 1)
            let fy = sy - Float(y0)
            for x in 0..<outWidth {
                let sx = max((Float(x) + 0.5) * scaleX - 0.5, 0)
                let x0 = min(Int(sx), width - 1), x1 = min(x0 + 1, width - 1)
                let fx = sx - Float(x0)
                let top = map[y0 * width + x0] * (1 - fx) + map[y0 * width + x1] * fx
                let bottom = map[y1 * width + x0] * (1 - fx) + map[y1 * width + x1] * fx
                out[y * outWidth + x] = top * (1 - fy) + bottom * fy
            }
        }
        return out
    }

    /// Colours `map` (HWC RGB8 out). Values are stretched to the map's own min...max so weak contrasts show;
    /// a flat map is drawn at its value.
    public static func colorize(_ map: [Float], colormap: Colormap) -> [UInt8] {
        let low = map.min() ?? 0, high = map.max() ?? 0
        let range = high - low
        var rgb = [UInt8](repeating: 0, count: map.count * 3)
        for (i, v) in map.enumerated() {
            let (r, g, b) = colormap.color(range > 1e-12 ? (v - low) / range : v)
            rgb[3 * i] = r
            rgb[3 * i + 1] = g
            rgb[3 * i + 2] = b
        }
        return rgb
    }

    /// Undoes the model's normalisation of a [3, height, width] CHW tensor: HWC RGB8 of the crop it saw.
    public static func denormalize(_ tensor: [Float], height: Int, width: Int, mean: [Float], std: [Float]) -> [UInt8] {
        precondition(tensor.count == 3 * height * width && mean.count == 3 && std.count == 3)
        let plane = height * width
        var rgb = [UInt8](repeating: 0, count: 3 * plane)
        for c in 0..<3 {
            for i in 0..<plane { rgb[3 * i + c] = byte(tensor[c * plane + i] * std[c] + mean[c]) }
        }
        return rgb
    }

    /// `alpha` of the heat-map over `1 - alpha` of the image, both HWC RGB8 of the same size.
    public static func blend(_ heat: [UInt8], over image: [UInt8], alpha: Float = 0.5) -> [UInt8] {
        precondition(heat.count == image.count, "heat-map and image differ in size")
        var out = [UInt8](repeating: 0, count: heat.count)
        for i in 0..<heat.count {
            out[i] = UInt8((Float(heat[i]) * alpha + Float(image[i]) * (1 - alpha)).rounded())
        }
        return out
    }

    /// The whole picture: spatial map upsampled to the crop, coloured, optionally blended over the crop.
    public static func render(spatial: [Float], height: Int, width: Int, cropSize: Int, colormap: Colormap = .jet,
                              overlay crop: [UInt8]? = nil, alpha: Float = 0.5) -> [UInt8] {
        let heat = colorize(upsample(spatial, height: height, width: width, toHeight: cropSize, width: cropSize),
                            colormap: colormap)
        guard let crop else { return heat }
        return blend(heat, over: crop, alpha: alpha)
    }
}
