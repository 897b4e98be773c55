import CBAMKernels

/// The attention module of a residual block, applied to the block's last BN output before the identity add.
enum BlockAttention {
    /// Channel then spatial attention: a channel map `[C]` and a spatial map `[H, W]`.
    case cbam(CBAM)
    /// Squeeze-and-excitation: a channel map only.
    case se(SqueezeExcitation)
    /// Efficient channel attention: a channel map only.
    case eca(EfficientChannelAttention)

    /// `config.json`'s `attention.type`.
    var type: AttentionType {
        switch self {
        case .cbam: .cbam
        case .se: .se
        case .eca: .eca
        }
    }

    var channels: Int {
        switch self {
        case .cbam(let m): m.channel.channels
        case .se(let m): m.channels
        case .eca(let m): m.channels
        }
    }

    /// Width of the channel MLP (CBAM, SE); nil for ECA.
    var hidden: Int? {
        switch self {
        case .cbam(let m): m.channel.hidden
        case .se(let m): m.hidden
        case .eca: nil
        }
    }

    /// Size of the 1-D (ECA) or 2-D (CBAM spatial) kernel; nil for SE.
    var kernel: Int? {
        switch self {
        case .cbam(let m): m.spatial.kernel
        case .se: nil
        case .eca(let m): m.kernel
        }
    }

    var hasSpatialMap: Bool { if case .cbam = self { true } else { false } }

    func multiplyAdds(height: Int, width: Int) -> Int {
        switch self {
        case .cbam(let m): m.channel.multiplyAdds() + m.spatial.multiplyAdds(height: height, width: width)
        case .se(let m): m.multiplyAdds()
        case .eca(let m): m.multiplyAdds()
        }
    }

    func scratchCount(batch: Int, height: Int, width: Int) -> Int {
        switch self {
        case .cbam(let m): m.scratchCount(batch: batch, height: height, width: width)
        case .se(let m): batch * m.channels + SqueezeExcitation.scratchCount(channels: m.channels, hidden: m.hidden, batch: batch)
        case .eca(let m): batch * m.channels + EfficientChannelAttention.scratchCount(channels: m.channels, batch: batch)
        }
    }

    /// Refines `feature` and finishes the residual block: `output = relu(attention(F) + identity)`.
    /// Leaves the channel map `[N, C]` at the start of `scratch`, then (CBAM only) the spatial map `[N, H, W]`.
    func refine(_ feature: FeatureMap, identity: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>,
                scratch: UnsafeMutablePointer<Float>, threads: Int = 1) {
        // With fewer images than threads (in a model's pass: one image on two threads), the calling thread makes all
        // of the passes over the map. Split, the attention is a few fork-joins and each step reads lines the other core
        // wrote in the step before; when the host puts the two vCPUs on cores that share no L3 (a cache line's round
        // trip 330-460 ns instead of 52-95) that costs more than the second core gives. Two threads, batch 1, runs in
        // turn classified by the round trip before and after each: on the default model's maps (6-49 K floats)
        // 1.893 → 1.786 ms far apart, 1.286 → 1.277 close; CBAM-ResNet-20 1.102 → 0.984 and 0.596 → 0.583;
        // ResNet-50 (maps of 100-800 K floats) 49.51 → 46.07 ms far apart and 37.35 → 37.51 close.
        // The channel MLP still shares its weights' rows between all `threads`: they come from memory (ResNet-50's
        // last stage: 2 MB a block), no core wrote them, and its output is a few hundred floats. ResNet-50, two
        // threads, batch 1, `--profile` in turn: CBAM 3.99 / 3.09 / 3.25 / 3.09 → 3.59 / 3.08 / 2.71 / 2.91 ms.
        let mlpThreads = threads
        let threads = feature.batch < threads ? 1 : threads
        let channelMap: UnsafeMutablePointer<Float> = scratch
        switch self {
        case .cbam(let m):
            m.refine(feature, identity: identity, into: output, scratch: scratch, threads: threads, mlpThreads: mlpThreads)
            return
        case .se(let m): m(feature, into: channelMap, scratch: scratch + feature.batch * feature.channels, threads: mlpThreads)
        case .eca(let m): m(feature, into: channelMap, scratch: scratch + feature.batch * feature.channels)
        }
        finishPlanes(feature, channelMap: channelMap, spatialMap: nil, identity: identity, into: output, threads: threads)
    }
}

/// The end of every attention block, `output = relu(F ⊗ M_c (⊗ M_s) + identity)` over the whole batch in memory
/// order: `channelMap` is `[N, C]`, `spatialMap` (CBAM's) `[N, H, W]`; threads share the channels. (A batch with
/// fewer images than threads never gets here on more than one: `BlockAttention.refine` runs it on one.)
func finishPlanes(_ feature: FeatureMap, channelMap: UnsafePointer<Float>, spatialMap: UnsafePointer<Float>?,
                  identity: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, threads: Int) {
    let (n, hw) = (feature.batch, feature.pixels)
    parallelRanges(feature.channels, threads: threads) { channels in
        for ch in channels {
            for image in 0..<n {
                finishPlane(feature, image: image, channel: ch, pixels: 0..<hw, channelMap: channelMap,
                            spatialMap: spatialMap, identity: identity, into: output)
            }
        }
    }
}

/// The same on `pixels` of one channel's plane of one image.
@inline(__always)
func finishPlane(_ feature: FeatureMap, image: Int, channel ch: Int, pixels: Range<Int>,
                 channelMap: UnsafePointer<Float>, spatialMap: UnsafePointer<Float>?, identity: UnsafePointer<Float>,
                 into output: UnsafeMutablePointer<Float>) {
    let (n, c, hw) = (feature.batch, feature.channels, feature.pixels)
    let mc = channelMap[image * c + ch]
    let offset = (ch * n + image) * hw + pixels.lowerBound
    let spatial = spatialMap.map { $0 + image * hw + pixels.lowerBound }
    cbam_attention_finish(feature.data + offset, mc, spatial, identity + offset, Int32(pixels.count), output + offset)
}
