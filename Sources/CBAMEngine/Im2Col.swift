/// Unfolds the receptive fields of a convolution into columns, so the convolution becomes one GEMM:
/// `columns[(ci·k + ky)·k + kx, n·Ho·Wo + oy·Wo + ox] = input[ci, n, oy·s − p + ky, ox·s − p + kx]` (0 outside).
/// A 1x1 kernel with stride > 1 is the strided gather of a downsampling shortcut.
func im2col(_ input: FeatureMap, kernel k: Int, stride s: Int, padding p: Int,
            outHeight oh: Int, outWidth ow: Int, into columns: UnsafeMutablePointer<Float>) {
    let (h, w, n) = (input.height, input.width, input.batch)
    let outPlane = n * oh * ow
    for ci in 0..<input.channels {
        for ky in 0..<k {
            for kx in 0..<k {
                var dst = columns + ((ci * k + ky) * k + kx) * outPlane
                // The output columns ox whose input column ix = ox·s − p + kx lies inside [0, w).
                let oxBegin = min(ow, max(0, -floorDivide(kx - p, s)))
                let oxEnd = max(oxBegin, min(ow, floorDivide(w - 1 + p - kx, s) + 1))
                for image in 0..<n {
                    let src = input.data + (ci * n + image) * h * w
                    for oy in 0..<oh {
                        let iy = oy * s - p + ky
                        if iy < 0 || iy >= h {
                            dst.update(repeating: 0, count: ow)
                        } else {
                            let row = src + iy * w - p + kx
                            if oxBegin > 0 { dst.update(repeating: 0, count: oxBegin) }
                            if s == 1 {
                                (dst + oxBegin).update(from: row + oxBegin, count: oxEnd - oxBegin)
                            } else {
                                for ox in oxBegin..<oxEnd { dst[ox] = row[ox * s] }
                            }
                            if oxEnd < ow { (dst + oxEnd).update(repeating: 0, count: ow - oxEnd) }
                        }
                        dst += ow
                    }
                }
            }
        }
    }
}

/// ⌊a / b⌋ for b > 0, also for negative a.
@inline(__always)
func floorDivide(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }
