/// A 3x3 stride-1 "same" convolution by Winograd's minimal filtering F(2x2, 3x3) (Lavin & Gray, 2016):
/// each 2x2 output tile is `Y = Aᵀ [Σ_ci (G g Gᵀ) ⊙ (Bᵀ d Bᵀ)] A` over the 4x4 input tile `d` around it, which
/// takes 16 multiplies per tile and channel pair instead of 36.
///
/// The weights are transformed once, at load, into 16 matrices `U[ξ] = [Cout, Cin]` (ξ = the 4x4 position).
/// A pass runs in blocks of whole tile rows: the input transform writes `V[ξ] = [Cin, tiles]`, 16 GEMMs make
/// `M[ξ] = U[ξ] · V[ξ]`, and the output transform writes the tiles with the bias and ReLU applied.
/// Blocks are independent, so threads take whole blocks, each in its own buffer.
struct WinogradConvolution: Sendable {
    let inChannels: Int
    let outChannels: Int
    let relu: Bool
    /// `[16, Cout, Cin]`: `U[ξ][o][i] = (G g[o][i] Gᵀ)[ξ]`.
    let transformedWeight: [Float]
    let bias: [Float]

    /// Transforms `weight` (`[Cout, Cin, 3, 3]`) by `G` of F(2x2, 3x3) on both sides.
    init(inChannels cin: Int, outChannels cout: Int, relu: Bool, weight: [Float], bias: [Float]) {
        precondition(weight.count == cout * cin * 9 && bias.count == cout, "Winograd F(2x2,3x3): weight is not [\(cout),\(cin),3,3]")
        var u = [Float](repeating: 0, count: 16 * cout * cin)
        for o in 0..<cout {
            for i in 0..<cin {
                let g = Array(weight[(o * cin + i) * 9..<(o * cin + i) * 9 + 9])
                // Gg: 4x3, rows (g0, (g0+g1+g2)/2, (g0−g1+g2)/2, g2) of the kernel's columns.
                var gg = [Float](repeating: 0, count: 12)
                for c in 0..<3 {
                    let (a, b, d) = (g[c], g[3 + c], g[6 + c])
                    gg[c] = a
                    gg[3 + c] = (a + b + d) / 2
                    gg[6 + c] = (a - b + d) / 2
                    gg[9 + c] = d
                }
                // (Gg)Gᵀ: the same combination along each row.
                for r in 0..<4 {
                    let (a, b, d) = (gg[r * 3], gg[r * 3 + 1], gg[r * 3 + 2])
                    let row = [a, (a + b + d) / 2, (a - b + d) / 2, d]
                    for c in 0..<4 { u[((r * 4 + c) * cout + o) * cin + i] = row[c] }
                }
            }
        }
        inChannels = cin
        outChannels = cout
        self.relu = relu
        transformedWeight = u
        self.bias = bias
    }

    static func tiles(_ size: Int) -> Int { (size + 1) / 2 }

    /// Tile rows per block: the block's `V` and `M` (16·(Cin+Cout)·tiles floats) about 1 MB, at least one tile row,
    /// and at least as many blocks as threads when the map allows it.
    func rowsPerBlock(batch: Int, height: Int, width: Int, threads: Int) -> Int {
        let (rows, tw) = (batch * Self.tiles(height), Self.tiles(width))
        let byCache = max(1, (1 << 18) / (16 * (inChannels + outChannels) * tw))
        return max(1, min(byCache, (rows + threads - 1) / threads))
    }

    /// Floats one thread's buffer needs: `V` and `M` of a block, then the even/odd columns of four input rows.
    func bufferCount(batch: Int, height: Int, width: Int, threads: Int) -> Int {
        let tw = Self.tiles(width)
        let tiles = rowsPerBlock(batch: batch, height: height, width: width, threads: threads) * tw
        return 16 * (inChannels + outChannels) * (tiles + Self.slack) + 8 * Self.columnsLength(tw) + 16
    }

    /// Floats after each row of `V` and `M` that the 8-wide transforms may run into past the last tile.
    static let slack = 8
    /// Length of each even/odd column array: 8-wide loads at k and k + 1 for every k < tiles.
    static func columnsLength(_ tw: Int) -> Int { (tw + 7) / 8 * 8 + 8 }

    /// `output = relu?(conv3x3(input) + bias)`, `[Cout, N, H, W]`; `buffers` holds one buffer per thread.
    func callAsFunction(_ input: FeatureMap, into output: UnsafeMutablePointer<Float>,
                        buffers: [UnsafeMutablePointer<Float>]) -> FeatureMap {
        precondition(input.channels == inChannels, "Winograd: input has \(input.channels) channels, expected \(inChannels)")
        let out = FeatureMap(data: output, channels: outChannels, batch: input.batch, height: input.height, width: input.width)
        let rows = input.batch * Self.tiles(input.height)
        let perBlock = rowsPerBlock(batch: input.batch, height: input.height, width: input.width, threads: buffers.count)
        let blocks = (rows + perBlock - 1) / perBlock
        parallelFor(blocks, threads: buffers.count) { block, thread in
            let first = block * perBlock
            runBlock(input, tileRows: first..<min(rows, first + perBlock), output: out, buffer: buffers[thread])
        }
        return out
    }

    private func runBlock(_ input: FeatureMap, tileRows: Range<Int>, output: FeatureMap, buffer: UnsafeMutablePointer<Float>) {
        let tw = Self.tiles(input.width)
        let tiles = tileRows.count * tw
        let ld = tiles + Self.slack
        let v = buffer, m = buffer + 16 * inChannels * ld
        let scratch = m + 16 * outChannels * ld
        for ci in 0..<inChannels {
            for g in tileRows {
                transformInput(input, channel: ci, tileRow: g, into: v + ci * ld + (g - tileRows.lowerBound) * tw,
                               stride: inChannels * ld, scratch: scratch)
            }
        }
        transformedWeight.withUnsafeBufferPointer { u in
            for xi in 0..<16 {
                gemm(m: outChannels, n: tiles, k: inChannels, a: u.baseAddress! + xi * outChannels * inChannels, lda: inChannels,
                     b: v + xi * inChannels * ld, ldb: ld, c: m + xi * outChannels * ld, ldc: ld)
            }
        }
        bias.withUnsafeBufferPointer { b in
            for co in 0..<outChannels {
                for g in tileRows {
                    transformOutput(m + co * ld + (g - tileRows.lowerBound) * tw, stride: outChannels * ld, bias: b[co],
                                    channel: co, tileRow: g, output: output, scratch: scratch)
                }
            }
        }
    }

    /// `V[ξ][k] = (Bᵀ d_k B)[ξ]` for the tiles k of one tile row of one channel, `ξ`'s matrices `stride` floats apart,
    /// eight tiles at a time (the last group may write up to 7 floats past the row, into the next row or the slack).
    /// Bᵀ = [[1,0,−1,0],[0,1,1,0],[0,−1,1,0],[0,1,0,−1]].
    @inline(__always)
    private func transformInput(_ input: FeatureMap, channel ci: Int, tileRow g: Int, into v: UnsafeMutablePointer<Float>,
                                stride: Int, scratch: UnsafeMutablePointer<Float>) {
        let (h, w) = (input.height, input.width)
        let th = Self.tiles(h), tw = Self.tiles(w)
        let (image, ty) = g.quotientAndRemainder(dividingBy: th)
        let plane = input.data + (ci * input.batch + image) * h * w
        // Row i of the tile row is input row 2·ty − 1 + i, split into even and odd padded columns:
        // e[k] = x(2k − 1), o[k] = x(2k), zero outside the map.
        let n = Self.columnsLength(tw)
        let e = scratch, o = scratch + 4 * n
        for i in 0..<4 {
            let y = 2 &* ty &- 1 &+ i
            let (ei, oi) = (e + i &* n, o + i &* n)
            guard y >= 0 && y < h else {
                fill(ei, with: 0, count: n)
                fill(oi, with: 0, count: n)
                continue
            }
            let row = plane + y &* w
            ei[0] = 0
            var k = 0
            while 2 &* k &+ 16 <= w {
                let pair = UnsafeRawPointer(row + 2 &* k).loadUnaligned(as: SIMD16<Float>.self)
                store(pair.evenHalf, oi + k)
                store(pair.oddHalf, ei + (k &+ 1))
                k &+= 8
            }
            while k &+ 1 < n {
                oi[k] = 2 &* k < w ? row[2 &* k] : 0
                ei[k &+ 1] = 2 &* k &+ 1 < w ? row[2 &* k &+ 1] : 0
                k &+= 1
            }
            oi[n &- 1] = 0
        }
        var k = 0
        while k < tw {
            // The vertical half of Bᵀ d B on the columns d0 = e[k], d1 = o[k], d2 = e[k+1], d3 = o[k+1] ...
            let (d0, d1, d2, d3) = (Self.columnTransform(e + k, n), Self.columnTransform(o + k, n),
                                    Self.columnTransform(e + (k &+ 1), n), Self.columnTransform(o + (k &+ 1), n))
            // ... then the horizontal half, row by row.
            let out = v + k
            Self.rowTransform(d0.0, d1.0, d2.0, d3.0, into: out, stride)
            Self.rowTransform(d0.1, d1.1, d2.1, d3.1, into: out + 4 &* stride, stride)
            Self.rowTransform(d0.2, d1.2, d2.2, d3.2, into: out + 8 &* stride, stride)
            Self.rowTransform(d0.3, d1.3, d2.3, d3.3, into: out + 12 &* stride, stride)
            k &+= 8
        }
    }

    /// Bᵀ applied down four rows (`n` floats apart) of eight columns: (x0 − x2, x1 + x2, x2 − x1, x1 − x3).
    @inline(__always)
    private static func columnTransform(_ p: UnsafePointer<Float>, _ n: Int) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let (x0, x1, x2, x3) = (load(p), load(p + n), load(p + 2 &* n), load(p + 3 &* n))
        return (x0 - x2, x1 + x2, x2 - x1, x1 - x3)
    }

    /// Bᵀ applied along a row of eight tiles: (d0 − d2, d1 + d2, d2 − d1, d1 − d3) to four matrices `stride` apart.
    @inline(__always)
    private static func rowTransform(_ d0: SIMD8<Float>, _ d1: SIMD8<Float>, _ d2: SIMD8<Float>, _ d3: SIMD8<Float>,
                                     into out: UnsafeMutablePointer<Float>, _ stride: Int) {
        store(d0 - d2, out)
        store(d1 + d2, out + stride)
        store(d2 - d1, out + 2 &* stride)
        store(d1 - d3, out + 3 &* stride)
    }

    /// The 2x2 output tiles of one tile row of one output channel, `Y = Aᵀ M A + bias` (ReLU'd when fused),
    /// Aᵀ = [[1,1,1,0],[0,1,−1,−1]]; `m`'s 16 matrices are `stride` floats apart. Eight tiles at a time.
    @inline(__always)
    private func transformOutput(_ m: UnsafePointer<Float>, stride: Int, bias: Float, channel co: Int, tileRow g: Int,
                                 output: FeatureMap, scratch: UnsafeMutablePointer<Float>) {
        let (h, w) = (output.height, output.width)
        let th = Self.tiles(h), tw = Self.tiles(w)
        let (image, ty) = g.quotientAndRemainder(dividingBy: th)
        let top = output.data + (co * output.batch + image) * h * w + 2 &* ty &* w
        let hasBottom = 2 &* ty &+ 1 < h
        let b = SIMD8<Float>(repeating: bias)
        let floor = SIMD8<Float>(repeating: relu ? 0 : -.infinity)
        var k = 0
        while k < tw {
            // Aᵀ along each row i: s_i = m_i0 + m_i1 + m_i2, t_i = m_i1 − m_i2 − m_i3 ...
            var s = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>()), t = s
            for i in 0..<4 {
                let row = m + 4 &* i &* stride + k
                let (a0, a1, a2, a3) = (load(row), load(row + stride), load(row + 2 &* stride), load(row + 3 &* stride))
                let (si, ti) = (a0 + a1 + a2, a1 - a2 - a3)
                switch i {
                case 0: (s.0, t.0) = (si, ti)
                case 1: (s.1, t.1) = (si, ti)
                case 2: (s.2, t.2) = (si, ti)
                default: (s.3, t.3) = (si, ti)
                }
            }
            // ... then down the columns.
            let x = 2 &* k
            writeRow(interleave(atLeast(s.0 + s.1 + s.2 + b, floor), atLeast(t.0 + t.1 + t.2 + b, floor)),
                     top + x, count: w &- x, scratch: scratch)
            if hasBottom {
                writeRow(interleave(atLeast(s.1 - s.2 - s.3 + b, floor), atLeast(t.1 - t.2 - t.3 + b, floor)),
                         top + (w &+ x), count: w &- x, scratch: scratch)
            }
            k &+= 8
        }
    }
}

@inline(__always)
private func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

@inline(__always)
private func load(_ p: UnsafeMutablePointer<Float>) -> SIMD8<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self) }

/// `max(v, floor)` lane by lane (the fused ReLU when `floor` is 0).
@inline(__always)
private func atLeast(_ v: SIMD8<Float>, _ floor: SIMD8<Float>) -> SIMD8<Float> { v.replacing(with: floor, where: v .< floor) }

@inline(__always)
private func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) { UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self) }

/// (a0, b0, a1, b1, …, a7, b7): the two columns of eight 2-wide output tiles, side by side.
@inline(__always)
private func interleave(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD16<Float> {
    var r = SIMD16<Float>()
    for i in 0..<8 { r[2 &* i] = a[i]; r[2 &* i &+ 1] = b[i] }
    return r
}

/// The first `min(count, 16)` lanes of `v` to `dst`, the others dropped (they are past the map's right edge).
@inline(__always)
private func writeRow(_ v: SIMD16<Float>, _ dst: UnsafeMutablePointer<Float>, count: Int, scratch: UnsafeMutablePointer<Float>) {
    if count >= 16 {
        UnsafeMutableRawPointer(dst).storeBytes(of: v, as: SIMD16<Float>.self)
    } else {
        UnsafeMutableRawPointer(scratch).storeBytes(of: v, as: SIMD16<Float>.self)
        copy(scratch, to: dst, count: count)
    }
}
