/// A 3x3 stride-1 "same" convolution by Winograd's minimal filtering (Lavin & Gray, 2016), F(2x2, 3x3) or
/// F(4x4, 3x3): each m x m output tile is `Y = Aᵀ [Σ_ci (G g Gᵀ) ⊙ (Bᵀ d B)] A` over the (m+2) x (m+2) input tile
/// `d` around it: 16 multiplies per tile and channel pair instead of 36 for F(2x2), 36 instead of 144 for F(4x4).
///
/// The weights are transformed once, at load, into (m+2)² matrices `U[ξ] = [Cout, Cin]` (ξ a position in the tile).
/// A pass runs in blocks of whole tile rows: the input transform writes `V[ξ] = [Cin, tiles]`, one GEMM per ξ on the
/// prepacked `U[ξ]` makes `M[ξ] = U[ξ] · V[ξ]`, and the output transform writes the tiles with the bias and ReLU applied.
/// Blocks are independent, so threads take whole blocks, each in its own buffer.
struct WinogradConvolution: Sendable {
    /// The output tile's side m.
    enum Variant: Int, Sendable {
        case f2x2 = 2, f4x4 = 4
    }

    let variant: Variant
    let inChannels: Int
    let outChannels: Int
    let relu: Bool
    /// `U[ξ] = [Cout, Cin]` for each of the (m+2)² tile positions ξ: `U[ξ][o][i] = (G g[o][i] Gᵀ)[ξ]`, packed.
    let transformedWeight: [PackedWeights]
    let bias: [Float]

    /// Transforms `weight` (`[Cout, Cin, 3, 3]`) by the variant's `G` on both sides (in double precision).
    init(_ variant: Variant, inChannels cin: Int, outChannels cout: Int, relu: Bool, weight: [Float], bias: [Float]) {
        precondition(weight.count == cout * cin * 9 && bias.count == cout, "Winograd: weight is not [\(cout),\(cin),3,3]")
        let g: [[Double]] = switch variant {
        case .f2x2: [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        case .f4x4: [[1.0 / 4, 0, 0], [-1.0 / 6, -1.0 / 6, -1.0 / 6], [-1.0 / 6, 1.0 / 6, -1.0 / 6],
                     [1.0 / 24, 1.0 / 12, 1.0 / 6], [1.0 / 24, -1.0 / 12, 1.0 / 6], [0, 0, 1]]
        }
        let t = g.count
        var u = [Float](repeating: 0, count: t * t * cout * cin)
        var gk = [Double](repeating: 0, count: t * 3)  // G·kernel, t x 3
        for o in 0..<cout {
            for i in 0..<cin {
                let kernel = (o * cin + i) * 9
                for r in 0..<t {
                    for kx in 0..<3 {
                        gk[r * 3 + kx] = (0..<3).reduce(0.0) { $0 + g[r][$1] * Double(weight[kernel + $1 * 3 + kx]) }
                    }
                }
                for r in 0..<t {
                    for c in 0..<t {
                        let sum = gk[r * 3] * g[c][0] + gk[r * 3 + 1] * g[c][1] + gk[r * 3 + 2] * g[c][2]
                        u[((r * t + c) * cout + o) * cin + i] = Float(sum)
                    }
                }
            }
        }
        self.variant = variant
        inChannels = cin
        outChannels = cout
        self.relu = relu
        transformedWeight = (0..<t * t).map { xi in
            u.withUnsafeBufferPointer { PackedWeights($0.baseAddress! + xi * cout * cin, rows: cout, columns: cin, rowStride: cin) }
        }
        self.bias = bias
    }

    /// The output tile's side m, and the input tile's m + 2.
    var outputTile: Int { variant.rawValue }
    var inputTile: Int { variant.rawValue + 2 }
    var points: Int { inputTile * inputTile }

    func tiles(_ size: Int) -> Int { (size + outputTile - 1) / outputTile }

    /// Tile rows per block: the block's `V` and `M` (points·(Cin+Cout)·tiles floats) about 4 MB (measured: larger
    /// GEMMs win over keeping the block in L2), at least one tile row, and at least one block per thread.
    func rowsPerBlock(batch: Int, height: Int, width: Int, threads: Int) -> Int {
        let (rows, tw) = (batch * tiles(height), tiles(width))
        let byCache = max(1, (1 << 20) / (points * (inChannels + outChannels) * tw))
        return max(1, min(byCache, (rows + threads - 1) / threads))
    }

    /// Floats one thread's buffer needs: `V` and `M` of a block, then the transforms' scratch.
    func bufferCount(batch: Int, height: Int, width: Int, threads: Int) -> Int {
        let tw = tiles(width)
        let tiles = rowsPerBlock(batch: batch, height: height, width: width, threads: threads) * tw
        return points * (inChannels + outChannels) * (tiles + Self.slack) + 48 * Self.columnsLength(tw) + 512
    }

    /// Floats after each row of `V` and `M` that the 8-wide transforms may run into past the last tile.
    static let slack = 8
    /// Length of each column-phase array: 8-wide loads at k and k + 1 for every k < tiles.
    static func columnsLength(_ tw: Int) -> Int { (tw + 7) / 8 * 8 + 8 }

    /// `output = relu?(conv3x3(input) + bias)`, `[Cout, N, H, W]`; `buffers` holds one buffer per thread.
    func callAsFunction(_ input: FeatureMap, into output: UnsafeMutablePointer<Float>,
                        buffers: [UnsafeMutablePointer<Float>]) -> FeatureMap {
        precondition(input.channels == inChannels, "Winograd: input has \(input.channels) channels, expected \(inChannels)")
        let out = FeatureMap(data: output, channels: outChannels, batch: input.batch, height: input.height, width: input.width)
        let rows = input.batch * tiles(input.height)
        let perBlock = rowsPerBlock(batch: input.batch, height: input.height, width: input.width, threads: buffers.count)
        let blocks = (rows + perBlock - 1) / perBlock
        parallelFor(blocks, threads: buffers.count) { block, thread in
            let first = block * perBlock
            runBlock(input, tileRows: first..<min(rows, first + perBlock), output: out, buffer: buffers[thread])
        }
        return out
    }

    private func runBlock(_ input: FeatureMap, tileRows: Range<Int>, output: FeatureMap, buffer: UnsafeMutablePointer<Float>) {
        let tw = tiles(input.width)
        let tiles = tileRows.count * tw
        let ld = tiles + Self.slack
        let v = buffer, m = buffer + points * inChannels * ld
        let scratch = m + points * outChannels * ld
        if variant == .f4x4 { Self.clearLineTails(scratch, tileColumns: tw, width: input.width) }
        for ci in 0..<inChannels {
            for g in tileRows {
                let into = v + ci * ld + (g - tileRows.lowerBound) * tw
                switch variant {
                case .f2x2: transformInput2(input, channel: ci, tileRow: g, into: into, stride: inChannels * ld, scratch: scratch)
                case .f4x4: transformInput4(input, channel: ci, tileRow: g, into: into, stride: inChannels * ld, scratch: scratch)
                }
            }
        }
        for xi in 0..<points {
            transformedWeight[xi].multiply(v + xi * inChannels * ld, ldb: ld, n: tiles, into: m + xi * outChannels * ld, ldc: ld)
        }
        bias.withUnsafeBufferPointer { b in
            for co in 0..<outChannels {
                for g in tileRows {
                    let from = m + co * ld + (g - tileRows.lowerBound) * tw
                    switch variant {
                    case .f2x2: transformOutput2(from, stride: outChannels * ld, bias: b[co], channel: co, tileRow: g,
                                                 output: output, scratch: scratch)
                    case .f4x4: transformOutput4(from, stride: outChannels * ld, bias: b[co], channel: co, tileRow: g,
                                                 output: output, scratch: scratch)
                    }
                }
            }
        }
    }

    // MARK: F(4x4, 3x3)

    /// `V[ξ][k] = (Bᵀ d_k B)[ξ]` of F(4x4, 3x3) for the tiles k of one tile row of one channel, eight tiles at a time
    /// (the last group may write up to 7 floats past the row, into the next row or the slack); `ξ`'s matrices are
    /// `stride` floats apart.
    @inline(__always)
    private func transformInput4(_ input: FeatureMap, channel ci: Int, tileRow g: Int, into v: UnsafeMutablePointer<Float>,
                                 stride: Int, scratch: UnsafeMutablePointer<Float>) {
        let (h, w) = (input.height, input.width)
        let th = tiles(h), tw = tiles(w)
        let (image, ty) = g.quotientAndRemainder(dividingBy: th)
        let plane = input.data + (ci * input.batch + image) * h * w
        // Row i of the tile row is input row 4·ty − 1 + i, split into four column phases q_r[k] = x(4k + r − 1),
        // zero outside the map: tile k's six columns are q0[k], q1[k], q2[k], q3[k], q0[k+1], q1[k+1].
        // Each row goes through a zero-padded line first, line[j] = x(j − 1), so the split needs no bounds. All six
        // lines are written before any is read back: a load straight after the shifted stores would stall on them.
        let n = Self.columnsLength(tw)
        let q = scratch  // q[(r·6 + i)·n + k]
        let lines = scratch + 24 &* n
        let length = 4 &* n
        for i in 0..<6 {
            let y = 4 &* ty &- 1 &+ i
            let line = lines + i &* length
            guard y >= 0 && y < h else { continue }
            line[0] = 0
            copy(plane + y &* w, to: line + 1, count: w)  // the zeros after it were written once per block
        }
        for i in 0..<6 {
            let y = 4 &* ty &- 1 &+ i
            let (q0, q1, q2, q3) = (q + i &* n, q + (6 &+ i) &* n, q + (12 &+ i) &* n, q + (18 &+ i) &* n)
            guard y >= 0 && y < h else {
                fill(q0, with: 0, count: n); fill(q1, with: 0, count: n)
                fill(q2, with: 0, count: n); fill(q3, with: 0, count: n)
                continue
            }
            let line = lines + i &* length
            var k = 0
            while k < n {
                let x = UnsafeRawPointer(line + 4 &* k).loadUnaligned(as: SIMD32<Float>.self)
                let (even, odd) = (x.evenHalf, x.oddHalf)
                store(even.evenHalf, q0 + k)
                store(odd.evenHalf, q1 + k)
                store(even.oddHalf, q2 + k)
                store(odd.oddHalf, q3 + k)
                k &+= 8
            }
        }
        // Bᵀ down the six rows of each phase, in place ...
        for r in 0..<4 {
            let base = q + r &* 6 &* n
            var k = 0
            while k <= tw {
                let p = base + k
                let d = Self.inputTransform6(load(p), load(p + n), load(p + 2 &* n), load(p + 3 &* n), load(p + 4 &* n), load(p + 5 &* n))
                store(d.0, p); store(d.1, p + n); store(d.2, p + 2 &* n)
                store(d.3, p + 3 &* n); store(d.4, p + 4 &* n); store(d.5, p + 5 &* n)
                k &+= 8
            }
        }
        // ... then along each transformed row.
        for i in 0..<6 {
            let (q0, q1, q2, q3) = (q + i &* n, q + (6 &+ i) &* n, q + (12 &+ i) &* n, q + (18 &+ i) &* n)
            let out = v + 6 &* i &* stride
            var k = 0
            while k < tw {
                let d = Self.inputTransform6(load(q0 + k), load(q1 + k), load(q2 + k), load(q3 + k),
                                             load(q0 + (k &+ 1)), load(q1 + (k &+ 1)))
                store(d.0, out + k); store(d.1, out + (stride &+ k)); store(d.2, out + (2 &* stride &+ k))
                store(d.3, out + (3 &* stride &+ k)); store(d.4, out + (4 &* stride &+ k)); store(d.5, out + (5 &* stride &+ k))
                k &+= 8
            }
        }
    }

    /// Zeroes what follows each of `transformInput4`'s six zero-padded lines past the map's last column, once per
    /// block: each channel and tile row then writes only the map's columns (a fill per line cost 4 % of a pass).
    private static func clearLineTails(_ scratch: UnsafeMutablePointer<Float>, tileColumns tw: Int, width w: Int) {
        let n = columnsLength(tw)
        let (lines, length) = (scratch + 24 &* n, 4 &* n)
        for i in 0..<6 { fill(lines + (i &* length &+ w &+ 1), with: 0, count: length &- w &- 1) }
    }

    /// Bᵀ of F(4x4, 3x3) on six values: rows [4,0,−5,0,1,0], [0,−4,−4,1,1,0], [0,4,−4,−1,1,0], [0,−2,−1,2,1,0],
    /// [0,2,−1,−2,1,0], [0,4,0,−5,0,1].
    @inline(__always)
    private static func inputTransform6(_ x0: SIMD8<Float>, _ x1: SIMD8<Float>, _ x2: SIMD8<Float>, _ x3: SIMD8<Float>,
                                        _ x4: SIMD8<Float>, _ x5: SIMD8<Float>)
        -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let a = x4 - 4 * x2, b = 4 * x1 - x3
        let c = x4 - x2, d = 2 * (x1 - x3)
        return (4 * x0 - 5 * x2 + x4, a - b, a + b, c - d, c + d, 4 * x1 - 5 * x3 + x5)
    }

    /// Aᵀ of F(4x4, 3x3) on six values: rows [1,1,1,1,1,0], [0,1,−1,2,−2,0], [0,1,1,4,4,0], [0,1,−1,8,−8,1].
    @inline(__always)
    private static func outputTransform6(_ m0: SIMD8<Float>, _ m1: SIMD8<Float>, _ m2: SIMD8<Float>, _ m3: SIMD8<Float>,
                                         _ m4: SIMD8<Float>, _ m5: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>, SIMD8<Float>, SIMD8<Float>) {
        let p = m1 + m2, q = m1 - m2, r = m3 + m4, s = m3 - m4
        return (m0 + p + r, q + 2 * s, p + 4 * r, q + 8 * s + m5)
    }

    /// The 4x4 output tiles of one tile row of one output channel, `Y = Aᵀ M A + bias` (ReLU'd when fused), eight
    /// tiles at a time; `m`'s 36 matrices are `stride` floats apart.
    @inline(__always)
    private func transformOutput4(_ m: UnsafePointer<Float>, stride: Int, bias: Float, channel co: Int, tileRow g: Int,
                                  output: FeatureMap, scratch: UnsafeMutablePointer<Float>) {
        let (h, w) = (output.height, output.width)
        let th = tiles(h), tw = tiles(w)
        let (image, ty) = g.quotientAndRemainder(dividingBy: th)
        let top = output.data + (co * output.batch + image) * h * w + 4 &* ty &* w
        let rowsInMap = Swift.min(4, h &- 4 &* ty)
        let b = SIMD8<Float>(repeating: bias)
        let floor = SIMD8<Float>(repeating: relu ? 0 : -.infinity)
        let s = scratch, y = scratch + 192, line = scratch + 320  // s[(i·4 + c)·8], y[(a·4 + c)·8], one output row
        var k = 0
        while k < tw {
            // Aᵀ along each of the six rows ...
            for i in 0..<6 {
                let row = m + (6 &* i &* stride &+ k)
                let o = Self.outputTransform6(load(row), load(row + stride), load(row + 2 &* stride), load(row + 3 &* stride),
                                              load(row + 4 &* stride), load(row + 5 &* stride))
                let si = s + i &* 32
                store(o.0, si); store(o.1, si + 8); store(o.2, si + 16); store(o.3, si + 24)
            }
            // ... then down each of the four columns, with the bias and the ReLU ...
            for c in 0..<4 {
                let sc = s + c &* 8
                let o = Self.outputTransform6(load(sc), load(sc + 32), load(sc + 64), load(sc + 96), load(sc + 128), load(sc + 160))
                store(atLeast(o.0 + b, floor), y + c &* 8)
                store(atLeast(o.1 + b, floor), y + (32 &+ c &* 8))
                store(atLeast(o.2 + b, floor), y + (64 &+ c &* 8))
                store(atLeast(o.3 + b, floor), y + (96 &+ c &* 8))
            }
            // ... and each output row's four columns side by side.
            let x = 4 &* k
            for a in 0..<rowsInMap {
                let ya = y + a &* 32
                // (c0, c2) and (c1, c3) side by side, then those two: c0, c1, c2, c3 of each tile in turn.
                let (even, odd) = (interleave(load(ya), load(ya + 16)), interleave(load(ya + 8), load(ya + 24)))
                let (left, right) = (interleave(even.lowHalf, odd.lowHalf), interleave(even.highHalf, odd.highHalf))
                let dst = top + (a &* w &+ x)
                if w &- x >= 32 {
                    UnsafeMutableRawPointer(dst).storeBytes(of: left, as: SIMD16<Float>.self)
                    UnsafeMutableRawPointer(dst + 16).storeBytes(of: right, as: SIMD16<Float>.self)
                } else {
                    UnsafeMutableRawPointer(line).storeBytes(of: left, as: SIMD16<Float>.self)
                    UnsafeMutableRawPointer(line + 16).storeBytes(of: right, as: SIMD16<Float>.self)
                    copy(line, to: dst, count: w &- x)
                }
            }
            k &+= 8
        }
    }

    // MARK: F(2x2, 3x3)

    /// `V[ξ][k] = (Bᵀ d_k B)[ξ]` for the tiles k of one tile row of one channel, `ξ`'s matrices `stride` floats apart,
    /// eight tiles at a time (the last group may write up to 7 floats past the row, into the next row or the slack).
    /// Bᵀ = [[1,0,−1,0],[0,1,1,0],[0,−1,1,0],[0,1,0,−1]].
    @inline(__always)
    private func transformInput2(_ input: FeatureMap, channel ci: Int, tileRow g: Int, into v: UnsafeMutablePointer<Float>,
                                stride: Int, scratch: UnsafeMutablePointer<Float>) {
        let (h, w) = (input.height, input.width)
        let th = tiles(h), tw = tiles(w)
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
    private func transformOutput2(_ m: UnsafePointer<Float>, stride: Int, bias: Float, channel co: Int, tileRow g: Int,
                                 output: FeatureMap, scratch: UnsafeMutablePointer<Float>) {
        let (h, w) = (output.height, output.width)
        let th = tiles(h), tw = tiles(w)
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

/// (a0, b0, a1, b1, …): the two columns of eight 2-wide output tiles, side by side.
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
