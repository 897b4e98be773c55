/// The Convolutional Block Attention Module: channel attention, then spatial attention,
/// `F' = M_c(F) ⊗ F`, `F'' = M_s(F') ⊗ F'`. It sits after a residual block's last BN, before the identity add.
struct CBAM {
    let channel: ChannelAttention
    let spatial: SpatialAttention

    func scratchCount(batch: Int, height: Int, width: Int) -> Int {
        Self.mapCount(channels: channel.channels, batch: batch, height: height, width: width)
            + max(ChannelAttention.scratchCount(channels: channel.channels, hidden: channel.hidden, batch: batch),
                  spatial.scratchCount(batch: batch, height: height, width: width))
    }

    /// Floats of the maps themselves: `M_c` (N·C) then `M_s` (N·H·W).
    static func mapCount(channels: Int, batch: Int, height: Int, width: Int) -> Int { batch * (channels + height * width) }

    /// Refines `feature` and finishes the residual block in one pass: `output = relu(F ⊗ M_c ⊗ M_s + identity)`.
    /// The maps are left at the start of `scratch`: `M_c` as `[N, C]`, then `M_s` as `[N, H, W]`. The passes over
    /// the map run on `threads` threads, the channel MLP on `mlpThreads` (by default as many).
    func refine(_ feature: FeatureMap, identity: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>,
                scratch: UnsafeMutablePointer<Float>, threads: Int = 1, mlpThreads: Int? = nil) {
        let (n, c, hw) = (feature.batch, feature.channels, feature.pixels)
        let channelMap = scratch
        let spatialMap = scratch + n * c
        let work = spatialMap + n * hw
        channel(feature, into: channelMap, scratch: work, threads: threads, mlpThreads: mlpThreads)
        guard n >= threads && c * hw <= Self.imageInCache else {
            // Fewer images than threads (in a model's pass such a batch comes here on one thread), or images too large
            // for a core's cache: each step over the whole batch, the refine in memory order.
            spatial(feature, channelMap: channelMap, into: spatialMap, scratch: work, threads: threads)
            finishPlanes(feature, channelMap: channelMap, spatialMap: spatialMap, identity: identity, into: output, threads: threads)
            return
        }
        // Whole images to each thread: the spatial pools bring the image's planes into cache, the refine finds them
        // there (one read of F from memory instead of two).
        parallelFor(n, threads: threads) { image, _ in
            spatial.map(feature, image: image, channelMap: channelMap + image * c, into: spatialMap + image * hw, scratch: work)
            for ch in 0..<c {
                finishPlane(feature, image: image, channel: ch, pixels: 0..<hw, channelMap: channelMap, spatialMap: spatialMap,
                            identity: identity, into: output)
            }
        }
    }

    /// Floats of one image's feature map up to which the spatial attention and refine run image by image (512 KB,
    /// half a Zen 4 core's L2). Above it, image by image was the slower order (ResNet-50 at batch 8: CBAM 74-90 ms
    /// against 65-70 ms for the whole-batch steps).
    static let imageInCache = 1 << 17
}
