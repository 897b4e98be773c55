/// What one forward pass returns: the logits of every image and, when asked, its attention maps.
public struct ForwardResult: Sendable {
    public let numClasses: Int
    /// `[batch, numClasses]`, row-major.
    public let logits: [Float]
    /// `[image][CBAM layer]` in network order; empty when attention was not asked for.
    public let attention: [[AttentionMap]]

    public init(numClasses: Int, logits: [Float], attention: [[AttentionMap]]) {
        self.numClasses = numClasses
        self.logits = logits
        self.attention = attention
    }

    public var batch: Int { logits.count / max(numClasses, 1) }

    /// The logits of one image.
    public func logits(of image: Int) -> ArraySlice<Float> { logits[image * numClasses..<(image + 1) * numClasses] }

    /// The `k` most probable classes of one image, by softmax probability.
    public func topK(of image: Int, k: Int) -> [ClassScore] { CBAMEngine.topK(softmax(logits(of: image)), k: k) }
}

/// The attention maps of one block (CBAM, SE or ECA) for one image.
public struct AttentionMap: Sendable, Equatable {
    /// The residual block the CBAM sits in, named like the PyTorch module: "layer1.0".
    public let layer: String
    /// Channel attention `M_c`: one value in (0, 1) per channel.
    public let channel: [Float]
    public let spatialHeight: Int
    public let spatialWidth: Int
    /// Spatial attention `M_s`: `spatialHeight × spatialWidth` values in (0, 1), row-major; empty (and both sizes 0)
    /// for attention without a spatial map (SE, ECA).
    public let spatial: [Float]

    public var hasSpatialMap: Bool { !spatial.isEmpty }

    public init(layer: String, channel: [Float], spatialHeight: Int, spatialWidth: Int, spatial: [Float]) {
        self.layer = layer
        self.channel = channel
        self.spatialHeight = spatialHeight
        self.spatialWidth = spatialWidth
        self.spatial = spatial
    }
}
