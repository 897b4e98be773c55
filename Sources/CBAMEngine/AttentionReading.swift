/// Reading one residual block's attention module in each checkpoint layout.
extension CheckpointLayout {
    /// The attention of block `block` ("layerX.Y") over `channels` channels.
    func readAttention(block: String, channels: Int, config: ModelConfig.Attention,
                       from checkpoint: Checkpoint) throws(ModelError) -> BlockAttention {
        let k = config.kernelSize
        switch self {
        case let .canonical(form, name, bias):
            let hidden = max(channels / config.reduction, 1)
            let p = "\(block).cbam.channel_attention.\(name)"
            let w1Shape = form == .conv ? [hidden, channels, 1, 1] : [hidden, channels]
            let w2Shape = form == .conv ? [channels, hidden, 1, 1] : [channels, hidden]
            let w1 = try checkpoint.tensor("\(p).0.weight", shape: w1Shape)
            let w2 = try checkpoint.tensor("\(p).2.weight", shape: w2Shape)
            let b1 = bias ? try checkpoint.tensor("\(p).0.bias", shape: [hidden]) : [Float](repeating: 0, count: hidden)
            let b2 = bias ? try checkpoint.tensor("\(p).2.bias", shape: [channels]) : [Float](repeating: 0, count: channels)
            let conv = try checkpoint.tensor("\(block).cbam.spatial_attention.conv.weight", shape: [1, 2, k, k])
            let mlp = ChannelMLP(channels: channels, hidden: hidden, w1: w1, b1: b1, w2: w2, b2: b2)
            return .cbam(CBAM(channel: ChannelAttention(mlp: mlp), spatial: SpatialAttention(kernel: k, weight: conv, bias: 0)))
        case .authors:
            let hidden = max(channels / config.reduction, 1)
            let p = "\(block).cbam.ChannelGate.mlp"
            let w1 = try checkpoint.tensor("\(p).1.weight", shape: [hidden, channels])
            let b1 = try checkpoint.tensor("\(p).1.bias", shape: [hidden])
            let w2 = try checkpoint.tensor("\(p).3.weight", shape: [channels, hidden])
            let b2 = try checkpoint.tensor("\(p).3.bias", shape: [channels])
            // The (max, mean) input planes swapped to (mean, max).
            let spatial = try Self.spatialWithBatchNorm(conv: "\(block).cbam.SpatialGate.spatial.conv", bn: "\(block).cbam.SpatialGate.spatial.bn",
                                                        kernel: k, maxFirst: true, from: checkpoint)
            let mlp = ChannelMLP(channels: channels, hidden: hidden, w1: w1, b1: b1, w2: w2, b2: b2)
            return .cbam(CBAM(channel: ChannelAttention(mlp: mlp), spatial: spatial))
        case .timm(.cbam):
            let mlp = try Self.convMLP("\(block).se.channel.fc1", "\(block).se.channel.fc2", channels: channels, from: checkpoint)
            let spatial = try Self.spatialWithBatchNorm(conv: "\(block).se.spatial.conv.conv", bn: "\(block).se.spatial.conv.bn",
                                                        kernel: k, maxFirst: false, from: checkpoint)
            return .cbam(CBAM(channel: ChannelAttention(mlp: mlp),
                              spatial: spatial))
        case .timm(.se):
            let mlp = try Self.convMLP("\(block).se.fc1", "\(block).se.fc2", channels: channels, from: checkpoint)
            return .se(SqueezeExcitation(mlp: mlp))
        case .timm(.eca):
            let name = "\(block).se.conv.weight"
            guard let shape = checkpoint.shape(of: name) else {
                throw ModelError("missing_tensor", "checkpoint is missing tensor \(name) (ECA expects shape [1,1,k], k odd)")
            }
            guard shape.count == 3, shape[0] == 1, shape[1] == 1, shape[2] % 2 == 1 else {
                throw ModelError("shape_mismatch", "tensor \(name) has shape \(Checkpoint.format(shape)), ECA expects [1,1,k] with k odd")
            }
            let weight = try checkpoint.tensor(name, shape: shape)
            return .eca(EfficientChannelAttention(channels: channels, kernel: shape[2], weight: weight))
        case .caSa:
            let mlp = try Self.convMLP("\(block).ca.fc1", "\(block).ca.fc2", channels: channels, from: checkpoint)
            let conv = try checkpoint.tensor("\(block).sa.conv1.weight", shape: [1, 2, k, k])
            let bias = try checkpoint.optionalTensor("\(block).sa.conv1.bias", shape: [1])?[0] ?? 0
            return .cbam(CBAM(channel: ChannelAttention(mlp: mlp),
                              spatial: SpatialAttention(kernel: k, weight: conv, bias: bias)))
        case .none:
            return try CheckpointLayout.canonical(mlp: .conv, name: "mlp", bias: false)
                .readAttention(block: block, channels: channels, config: config, from: checkpoint)
        }
    }

    /// A two-layer MLP of 1x1 convs (or Linear) `C → hidden → C`, biases optional; the hidden width is read from the
    /// first weight (timm and others round it their own way).
    private static func convMLP(_ fc1: String, _ fc2: String, channels: Int, from checkpoint: Checkpoint) throws(ModelError)
        -> ChannelMLP {
        guard let s1 = checkpoint.shape(of: "\(fc1).weight") else {
            throw ModelError("missing_tensor", "checkpoint is missing tensor \(fc1).weight (expected shape [hidden,\(channels),1,1])")
        }
        guard (s1.count == 4 && s1[2] == 1 && s1[3] == 1) || s1.count == 2, s1[1] == channels, s1[0] >= 1 else {
            throw ModelError("shape_mismatch", "tensor \(fc1).weight has shape \(Checkpoint.format(s1)), expected [hidden,\(channels),1,1]")
        }
        let hidden = s1[0]
        let conv = s1.count == 4
        let w1 = try checkpoint.tensor("\(fc1).weight", shape: s1)
        let w2 = try checkpoint.tensor("\(fc2).weight", shape: conv ? [channels, hidden, 1, 1] : [channels, hidden])
        let b1 = try checkpoint.optionalTensor("\(fc1).bias", shape: [hidden]) ?? [Float](repeating: 0, count: hidden)
        let b2 = try checkpoint.optionalTensor("\(fc2).bias", shape: [channels]) ?? [Float](repeating: 0, count: channels)
        return ChannelMLP(channels: channels, hidden: hidden, w1: w1, b1: b1, w2: w2, b2: b2)
    }

    /// A `[1, 2, k, k]` convolution followed by a one-channel BatchNorm, folded; `maxFirst` swaps (max, mean) inputs to (mean, max).
    private static func spatialWithBatchNorm(conv: String, bn: String, kernel k: Int, maxFirst: Bool,
                                             from checkpoint: Checkpoint) throws(ModelError) -> SpatialAttention {
        let weight = try checkpoint.tensor("\(conv).weight", shape: [1, 2, k, k])
        let norm = try BatchNorm(reading: bn, channels: 1, from: checkpoint)
        let ordered = maxFirst ? Array(weight[(k * k)...]) + Array(weight[..<(k * k)]) : weight
        let scale = norm.scale(0)
        return SpatialAttention(kernel: k, weight: ordered.map { $0 * scale }, bias: norm.shift(0))
    }
}
