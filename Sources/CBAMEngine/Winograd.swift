import CBAMKernels

/// A 3x3 stride-1 "same" convolution by Winograd's minimal filtering (Lavin & Gray, 2016), F(2x2, 3x3) or
/// F(4x4, 3x3): each m x m output tile is `Y = Aᵀ [Σ_ci (G g Gᵀ) ⊙ (Bᵀ d B)] A` over the (m+2) x (m+2) input tile
/// `d` around it: 16 multiplies per tile and channel pair instead of 36 for F(2x2), 36 instead of 144 for F(4x4).
///
/// The weights are transformed once, at load, into (m+2)² matrices `U[ξ] = [Cout, Cin]` (ξ a position in the tile).
/// A pass runs in blocks of whole tile rows: each channel's input tiles are gathered (many tile rows side by side),
/// the input transform writes `V[ξ] = [Cin, tiles]`, one GEMM per ξ on the prepacked `U[ξ]` makes
/// `M[ξ] = U[ξ] · V[ξ]`, and the output transform writes the tiles with the bias and ReLU applied. F(4x4)'s two
/// transforms are C (`CBAMKernels`, per instruction set), F(2x2)'s Swift. Blocks are independent, so threads take
/// whole blocks, each in its own buffer; a pass with few tiles (small maps at batch 1) is one block, whose output
/// channels the threads share instead.
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

    /// Tile rows per block, whole rows, at least one, and blocks of one size for each thread. The block's `V` and `M`
    /// (points·(Cin+Cout)·tiles floats) take about 1 MB where that still leaves 128 tiles to each of its GEMMs (few
    /// channels: `V` and `M` stay in L2), else up to 4 MB (many channels: longer GEMMs on each `U[ξ]` won over
    /// keeping the block in L2). Measured, one thread, 4 MB everywhere → this: CBAM-ResNet-20 batch 64 63.2 → 58.1 ms,
    /// the default model at batch 64 141.0 → 137.4 (1 MB everywhere: 153.6).
    func rowsPerBlock(batch: Int, height: Int, width: Int, threads: Int) -> Int {
        let (rows, tw) = (batch * tiles(height), tiles(width))
        if sharesOutputChannels(tiles: rows * tw, threads: threads) { return rows }
        let perTile = points * (inChannels + outChannels)
        let blockTiles = min((1 << 20) / perTile, max((1 << 18) / perTile, 128))
        // One thread keeps the largest blocks: evened out, CBAM-ResNet-20's 32x32 maps had 216 tiles a block instead
        // of 224, a GEMM with a tail of 24 columns (batch 64 52.2 → 55.7 ms).
        return rowsPerPart(rows, atMost: blockTiles / tw, threads: threads)
    }

    /// Whether a pass on `threads` threads is one block whose output channels the threads share: with fewer than 64
    /// tiles per thread and `U` of 1 MB or more, blocks of tile rows would leave each thread GEMMs of a few columns on
    /// all of `U`, and each would read all of it (ResNet-50 at batch 1: 4-17 MB a layer, from memory). Each thread
    /// then transforms the whole input itself (a small map's) and multiplies and transforms out its share of the
    /// output channels. Two threads, eight alternating rounds (medians, a noisy hour): ResNet-50 batch 1 57.1 → 47.8 ms,
    /// its F(2x2) layers 4.3-6.3 → 3.0 ms (`--profile`); the default model unchanged (1.72 ms). Without the 1 MB
    /// floor CBAM-ResNet-20 (16-64 channels, `U` up to 0.6 MB) was slower, 0.74 → 0.79 ms.
    func sharesOutputChannels(tiles: Int, threads: Int) -> Bool {
        threads > 1 && tiles < 64 * threads && points * inChannels * outChannels >= 1 << 18
    }

    /// Floats one thread's buffer needs: `V` and `M` of a block, then the transforms' scratch.
    func bufferCount(batch: Int, height: Int, width: Int, threads: Int) -> Int {
        let tw = tiles(width)
        let tiles = rowsPerBlock(batch: batch, height: height, width: width, threads: threads) * tw
        return points * (inChannels + outChannels) * (tiles + Self.slack) + scratchCount(tileColumns: tw, blockTiles: tiles)
    }

    /// Floats after each row of `V` and `M` that the 8-wide transforms may run into past the last tile.
    static let slack = 8

    /// Tiles the input transform gathers at a time for each channel: whole tile rows, together at least this many,
    /// so that on a narrow map (7x7 has two F(4x4) tiles a row) the eight lanes of the transforms still hold eight
    /// tiles, from consecutive tile rows.
    static let gatherTiles = 64

    func rowsPerGather(tileColumns tw: Int) -> Int { max(1, Self.gatherTiles / tw) }

    /// Floats of each gathered tile position: the gather's tiles and the up to 7 an 8-wide store runs past them.
    func gatherLength(tileColumns tw: Int) -> Int { rowsPerGather(tileColumns: tw) * tw + 8 }

    /// Floats of each zero-padded input line: `line[j] = x(j − 1)`, then zeros as far as the 8-wide loads reach.
    func lineLength(tileColumns tw: Int) -> Int { outputTile * ((tw + 7) / 8 * 8) + 4 * outputTile + 8 }

    /// The scratch after `V` and `M`: m + 2 input lines and a line of zeros, the gathered tiles (one array per tile
    /// position), and the output rows of a block's tiles (`outputRowLength` floats each).
    func scratchCount(tileColumns tw: Int, blockTiles: Int) -> Int {
        (inputTile + 1) * lineLength(tileColumns: tw) + points * gatherLength(tileColumns: tw)
            + outputTile * outputRowLength(blockTiles: blockTiles)
    }

    /// Floats of each output row the output transform writes for a block: m values per tile, the tiles rounded up to
    /// the 16 that `cbam_winograd4_output` writes a step.
    func outputRowLength(blockTiles: Int) -> Int { outputTile * ((blockTiles + 15) / 16 * 16) }

    /// `output = relu?(conv3x3(input) + bias)`, `[Cout, N, H, W]`; `buffers` holds one buffer per thread.
    func callAsFunction(_ input: FeatureMap, into output: UnsafeMutablePointer<Float>,
                        buffers: [UnsafeMutablePointer<Float>]) -> FeatureMap {
        precondition(input.channels == inChannels, "Winograd: input has \(input.channels) channels, expected \(inChannels)")
        let out = FeatureMap(data: output, channels: outChannels, batch: input.batch, height: input.height, width: input.width)
        let rows = input.batch * tiles(input.height)
        let perBlock = rowsPerBlock(batch: input.batch, height: input.height, width: input.width, threads: buffers.count)
        if sharesOutputChannels(tiles: rows * tiles(input.width), threads: buffers.count) {
            parallelFor(buffers.count, threads: buffers.count) { part, thread in
                runBlock(input, tileRows: 0..<rows, outputChannels: transformedWeight[0].rowRange(part: part, of: buffers.count),
                         output: out, buffer: buffers[thread])
            }
            return out
        }
        let blocks = (rows + perBlock - 1) / perBlock
        parallelFor(blocks, threads: buffers.count) { block, thread in
            let first = block * perBlock
            runBlock(input, tileRows: first..<min(rows, first + perBlock), outputChannels: 0..<outChannels, output: out,
                     buffer: buffers[thread])
        }
        return out
    }

    /// The tile rows `tileRows` of the output channels `outputChannels` (all of the input's channels transformed).
    private func runBlock(_ input: FeatureMap, tileRows: Range<Int>, outputChannels: Range<Int>, output: FeatureMap,
                          buffer: UnsafeMutablePointer<Float>) {
        let tw = tiles(input.width)
        let tiles = tileRows.count * tw
        let ld = tiles + Self.slack
        let v = buffer, m = buffer + points * inChannels * ld
        let lines = m + points * outChannels * ld, lineLength = lineLength(tileColumns: tw)
        let gathered = lines + (inputTile + 1) * lineLength, gatherLength = gatherLength(tileColumns: tw)
        let scratch = gathered + points * gatherLength
        // Each tile row writes only its lines' map columns: the zeros around them (and the line of zeros that stands
        // for rows above and below the map) are written once per block.
        fill(lines, with: 0, count: (inputTile + 1) * lineLength)
        let perGather = rowsPerGather(tileColumns: tw)
        for ci in 0..<inChannels {
            var first = tileRows.lowerBound
            while first < tileRows.upperBound {
                let rows = first..<Swift.min(tileRows.upperBound, first + perGather)
                for g in rows {
                    gatherTiles(input, channel: ci, tileRow: g, lines: lines, lineLength: lineLength,
                                into: gathered + (g - rows.lowerBound) * tw, gatherLength)
                }
                let into = v + ci * ld + (rows.lowerBound - tileRows.lowerBound) * tw
                switch variant {
                case .f2x2: transformInput2(gathered, gatherLength, count: rows.count * tw, into: into, stride: inChannels * ld)
                case .f4x4: cbam_winograd4_input(gathered, gatherLength, Int32(rows.count * tw), into, inChannels * ld)
                }
                first = rows.upperBound
            }
        }
        for xi in 0..<points {
            transformedWeight[xi].multiply(rows: outputChannels, v + xi * inChannels * ld, ldb: ld, n: tiles,
                                           into: m + xi * outChannels * ld, ldc: ld)
        }
        let rowLength = outputRowLength(blockTiles: tiles)
        for co in outputChannels {
            switch variant {
            case .f2x2:
                let b = SIMD8<Float>(repeating: bias[co]), floor = SIMD8<Float>(repeating: relu ? 0 : -.infinity)
                var k = 0
                while k < tiles {
                    transformOutput2(m + co * ld + k, stride: outChannels * ld, bias: b, floor: floor, rows: scratch)
                    writeTiles(scratch, rowLength: 16, first: k, count: Swift.min(8, tiles - k), tileRows: tileRows,
                               channel: co, output: output)
                    k &+= 8
                }
            case .f4x4:
                cbam_winograd4_output(m + co * ld, outChannels * ld, Int32(tiles), bias[co], relu ? 1 : 0, scratch, rowLength)
                writeTiles(scratch, rowLength: rowLength, first: 0, count: tiles, tileRows: tileRows, channel: co, output: output)
            }
        }
    }

    /// The input tiles of one tile row of one channel, gathered: `d[(i·t + j)·dl + k]` is `x(m·ty − 1 + i, m·k − 1 + j)`
    /// (zero outside the map) for the row's tiles k, t = m + 2. Eight tiles at a time, so the last group writes up to
    /// 7 tiles past the row (into the next row's place, written after, or the slack).
    @inline(__always)
    private func gatherTiles(_ input: FeatureMap, channel ci: Int, tileRow g: Int, lines: UnsafeMutablePointer<Float>,
                             lineLength: Int, into d: UnsafeMutablePointer<Float>, _ dl: Int) {
        let (h, w) = (input.height, input.width)
        let (m, t, tw) = (outputTile, inputTile, tiles(w))
        let (image, ty) = g.quotientAndRemainder(dividingBy: tiles(h))
        let plane = input.data + (ci * input.batch + image) * h * w
        let zeros = lines + t &* lineLength
        // Each input row goes through a zero-padded line first, line[j] = x(j − 1), so the split needs no bounds.
        // All lines are written before any is read back: a load straight after the shifted stores would stall on them.
        for i in 0..<t {
            let y = m &* ty &- 1 &+ i
            if y >= 0 && y < h { copy(plane + y &* w, to: lines + (i &* lineLength &+ 1), count: w) }
        }
        for i in 0..<t {
            let y = m &* ty &- 1 &+ i
            let line = y >= 0 && y < h ? lines + i &* lineLength : zeros
            let row = d + i &* t &* dl
            var k = 0
            switch variant {
            case .f4x4:
                // Tile k's columns are line[4k ..< 4k + 6]: the four phases of the 32 values from 4k, then the first
                // two of those from 4k + 4.
                while k < tw {
                    let x = UnsafeRawPointer(line + 4 &* k).loadUnaligned(as: SIMD32<Float>.self)
                    let next = UnsafeRawPointer(line + (4 &* k &+ 4)).loadUnaligned(as: SIMD32<Float>.self)
                    let (even, odd) = (x.evenHalf, x.oddHalf)
                    store(even.evenHalf, row + k)
                    store(odd.evenHalf, row + (dl &+ k))
                    store(even.oddHalf, row + (2 &* dl &+ k))
                    store(odd.oddHalf, row + (3 &* dl &+ k))
                    store(next.evenHalf.evenHalf, row + (4 &* dl &+ k))
                    store(next.oddHalf.evenHalf, row + (5 &* dl &+ k))
                    k &+= 8
                }
            case .f2x2:
                // Tile k's columns are line[2k ..< 2k + 4].
                while k < tw {
                    let x = UnsafeRawPointer(line + 2 &* k).loadUnaligned(as: SIMD16<Float>.self)
                    let next = UnsafeRawPointer(line + (2 &* k &+ 2)).loadUnaligned(as: SIMD16<Float>.self)
                    store(x.evenHalf, row + k)
                    store(x.oddHalf, row + (dl &+ k))
                    store(next.evenHalf, row + (2 &* dl &+ k))
                    store(next.oddHalf, row + (3 &* dl &+ k))
                    k &+= 8
                }
            }
        }
    }

    /// The output rows of the tiles `first ..< first + count` of the block (numbered row by row over its tile rows),
    /// from `rows`: output row a of those tiles side by side at `rows + a·rowLength`. Each tile row they span is
    /// written as one run, cut at the map's right and bottom edges.
    @inline(__always)
    private func writeTiles(_ rows: UnsafePointer<Float>, rowLength: Int, first: Int, count: Int, tileRows: Range<Int>,
                            channel co: Int, output: FeatureMap) {
        let (h, w) = (output.height, output.width)
        let (m, th, tw) = (outputTile, tiles(h), tiles(w))
        var f = first
        while f < first &+ count {
            let (r, kx) = f.quotientAndRemainder(dividingBy: tw)
            let n = Swift.min(tw &- kx, first &+ count &- f)
            let (image, ty) = (tileRows.lowerBound &+ r).quotientAndRemainder(dividingBy: th)
            let x = m &* kx
            let top = output.data + (((co &* output.batch &+ image) &* h &+ m &* ty) &* w &+ x)
            let columns = Swift.min(m &* n, w &- x)
            let source = rows + m &* (f &- first)
            for a in 0..<Swift.min(m, h &- m &* ty) { copy(source + a &* rowLength, to: top + a &* w, count: columns) }
            f &+= n
        }
    }

    // MARK: F(4x4, 3x3)

    // Its input and output transforms are `cbam_winograd4_input` and `cbam_winograd4_output` (CBAMKernels, C with
    // AVX-512 / AVX2 / portable variants: 16 tiles a step where the Swift SIMD8 code, built for baseline x86-64,
    // took 8 in pairs of 4-wide instructions).

    // MARK: F(2x2, 3x3)

    /// `V[ξ][k] = (Bᵀ d_k B)[ξ]` of F(2x2, 3x3) for `count` gathered tiles, eight at a time (the last group may write
    /// up to 7 floats past them); `ξ`'s matrices are `stride` floats apart. Bᵀ = [[1,0,−1,0],[0,1,1,0],[0,−1,1,0],[0,1,0,−1]].
    @inline(__always)
    private func transformInput2(_ d: UnsafeMutablePointer<Float>, _ dl: Int, count: Int, into v: UnsafeMutablePointer<Float>,
                                 stride: Int) {
        var k = 0
        while k < count {
            // Bᵀ down each of the four columns, in place ...
            for j in 0..<4 {
                let p = d + (j &* dl &+ k)
                let (x0, x1, x2, x3) = (load(p), load(p + 4 &* dl), load(p + 8 &* dl), load(p + 12 &* dl))
                store(x0 - x2, p); store(x1 + x2, p + 4 &* dl); store(x2 - x1, p + 8 &* dl); store(x1 - x3, p + 12 &* dl)
            }
            // ... then along each of the four rows, into V.
            for i in 0..<4 {
                let p = d + (4 &* i &* dl &+ k)
                let (x0, x1, x2, x3) = (load(p), load(p + dl), load(p + 2 &* dl), load(p + 3 &* dl))
                let out = v + (4 &* i &* stride &+ k)
                store(x0 - x2, out); store(x1 + x2, out + stride); store(x2 - x1, out + 2 &* stride); store(x1 - x3, out + 3 &* stride)
            }
            k &+= 8
        }
    }

    /// `Y = Aᵀ M A + bias` (at least `floor`) of eight 2x2 output tiles of one output channel, Aᵀ = [[1,1,1,0],[0,1,−1,−1]];
    /// `m`'s 16 matrices are `stride` floats apart. Output row a of the eight tiles goes to `rows + 16a`.
    @inline(__always)
    private func transformOutput2(_ m: UnsafePointer<Float>, stride: Int, bias b: SIMD8<Float>, floor: SIMD8<Float>,
                                  rows: UnsafeMutablePointer<Float>) {
        // Aᵀ along each row i: s_i = m_i0 + m_i1 + m_i2, t_i = m_i1 − m_i2 − m_i3 ...
        var s = (SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>(), SIMD8<Float>()), t = s
        for i in 0..<4 {
            let row = m + 4 &* i &* stride
            let (a0, a1, a2, a3) = (load(row), load(row + stride), load(row + 2 &* stride), load(row + 3 &* stride))
            let (si, ti) = (a0 + a1 + a2, a1 - a2 - a3)
            switch i {
            case 0: (s.0, t.0) = (si, ti)
            case 1: (s.1, t.1) = (si, ti)
            case 2: (s.2, t.2) = (si, ti)
            default: (s.3, t.3) = (si, ti)
            }
        }
        // ... then down the columns, each output row's two columns side by side.
        UnsafeMutableRawPointer(rows).storeBytes(
            of: interleave(atLeast(s.0 + s.1 + s.2 + b, floor), atLeast(t.0 + t.1 + t.2 + b, floor)), as: SIMD16<Float>.self)
        UnsafeMutableRawPointer(rows + 16).storeBytes(
            of: interleave(atLeast(s.1 - s.2 - s.3 + b, floor), atLeast(t.1 - t.2 - t.3 + b, floor)), as: SIMD16<Float>.self)
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
