/// Unfolds the receptive fields of a convolution into columns, so the convolution becomes a GEMM:
/// `columns[(ci·k + ky)·k + kx, j] = input[ci, n, oy·s − p + ky, ox·s − p + kx]` (0 outside), for the output pixels
/// `j = (row − rows.first)·Wo + ox` of the output rows `row = n·Ho + oy` in `rows`.
/// A 1x1 kernel with stride > 1 is the strided gather of a downsampling shortcut.
func im2col(_ input: FeatureMap, kernel k: Int, stride s: Int, padding p: Int,
            outHeight oh: Int, outWidth ow: Int, rows: Range<Int>, into columns: UnsafeMutablePointer<Float>) {
    let (h, w, n) = (input.height, input.width, input.batch)
    let outPlane = rows.count * ow
    for ci in 0..<input.channels {
        for ky in 0..<k {
            for kx in 0..<k {
                var dst = columns + ((ci * k + ky) * k + kx) * outPlane
                // The output columns ox whose input column ix = ox·s − p + kx lies inside [0, w).
                let oxBegin = min(ow, max(0, -floorDivide(kx - p, s)))
                let oxEnd = max(oxBegin, min(ow, floorDivide(w - 1 + p - kx, s) + 1))
                var (image, oy) = rows.lowerBound.quotientAndRemainder(dividingBy: oh)
                for _ in rows {
                    let iy = oy &* s &- p &+ ky
                    if iy < 0 || iy >= h {
                        fill(dst, with: 0, count: ow)
                    } else {
                        let plane: Int = (ci &* n &+ image) &* h
                        let line = input.data + ((plane &+ iy) &* w &- p &+ kx)
                        if ow >= 4 && oxBegin <= 4 && ow &- oxEnd <= 4 {
                            // The padding at either end with one vector store each; the copy then overwrites
                            // whatever of those stores fell inside the row (a loop here would become a memset call).
                            zero4(dst)
                            zero4(dst + (ow &- 4))
                        } else {
                            for ox in 0..<oxBegin { dst[ox] = 0 }
                            for ox in oxEnd..<ow { dst[ox] = 0 }
                        }
                        if s == 1 {
                            copy(line + oxBegin, to: dst + oxBegin, count: oxEnd &- oxBegin)
                        } else if s == 2 {
                            gatherEven(line + 2 &* oxBegin, to: dst + oxBegin, count: oxEnd &- oxBegin)
                        } else {
                            for ox in oxBegin..<oxEnd { dst[ox] = line[ox &* s] }
                        }
                    }
                    dst += ow
                    oy += 1
                    if oy == oh { oy = 0; image += 1 }
                }
            }
        }
    }
}

/// ⌊a / b⌋ for b > 0, also for negative a.
@inline(__always)
func floorDivide(_ a: Int, _ b: Int) -> Int { a >= 0 ? a / b : -((-a + b - 1) / b) }

/// `dst[i] = src[i]` in vectors of 16, 8 and 4 floats, at most 3 scalar moves (rows are short: 7 to 112 floats;
/// a call to memmove, or a long scalar tail, would cost more than the copy).
@inline(__always)
func copy(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i &+ 16 <= count {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD16<Float>.self), as: SIMD16<Float>.self)
        i &+= 16
    }
    if i &+ 8 <= count {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD8<Float>.self), as: SIMD8<Float>.self)
        i &+= 8
    }
    if i &+ 4 <= count {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: UnsafeRawPointer(src + i).loadUnaligned(as: SIMD4<Float>.self), as: SIMD4<Float>.self)
        i &+= 4
    }
    while i < count { dst[i] = src[i]; i &+= 1 }
}

/// `dst[i] = src[2i]` for `i < count`, the stride-2 gather of downsampling convolutions: the even lanes of 16 (or 8)
/// loaded floats at a time, and the last group as the odd lanes of a load that ends at `src[2·count − 2]` (it
/// overlaps the group before), so nothing past that element is read and only the short rows go scalar.
@inline(__always)
func gatherEven(_ src: UnsafePointer<Float>, to dst: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    if count >= 9 {
        while 2 &* i &+ 16 <= 2 &* count &- 1 {
            UnsafeMutableRawPointer(dst + i).storeBytes(of: load16(src + 2 &* i).evenHalf, as: SIMD8<Float>.self)
            i &+= 8
        }
        if i < count {
            UnsafeMutableRawPointer(dst + (count &- 8)).storeBytes(of: load16(src + (2 &* count &- 17)).oddHalf, as: SIMD8<Float>.self)
        }
    } else if count >= 5 {
        while 2 &* i &+ 8 <= 2 &* count &- 1 {
            UnsafeMutableRawPointer(dst + i).storeBytes(of: load8(src + 2 &* i).evenHalf, as: SIMD4<Float>.self)
            i &+= 4
        }
        if i < count {
            UnsafeMutableRawPointer(dst + (count &- 4)).storeBytes(of: load8(src + (2 &* count &- 9)).oddHalf, as: SIMD4<Float>.self)
        }
    } else {
        while i < count { dst[i] = src[2 &* i]; i &+= 1 }
    }
}

@inline(__always)
private func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }

@inline(__always)
private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

/// `dst[i] = value` in vectors of 16, 8 and 4 floats, at most 3 scalar stores.
@inline(__always)
func fill(_ dst: UnsafeMutablePointer<Float>, with value: Float, count: Int) {
    var i = 0
    while i &+ 16 <= count {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: SIMD16<Float>(repeating: value), as: SIMD16<Float>.self)
        i &+= 16
    }
    if i &+ 8 <= count {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: SIMD8<Float>(repeating: value), as: SIMD8<Float>.self)
        i &+= 8
    }
    if i &+ 4 <= count {
        UnsafeMutableRawPointer(dst + i).storeBytes(of: SIMD4<Float>(repeating: value), as: SIMD4<Float>.self)
        i &+= 4
    }
    while i < count { dst[i] = value; i &+= 1 }
}

@inline(__always)
func zero4(_ dst: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(dst).storeBytes(of: SIMD4<Float>(), as: SIMD4<Float>.self) }
