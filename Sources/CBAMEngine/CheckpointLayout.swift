/// How a checkpoint names and shapes its CBAM tensors, detected from the names and shapes themselves.
public enum CheckpointLayout: Equatable, Sendable, CustomStringConvertible {
    /// `layerX.Y.cbam.channel_attention.{mlp|fc}.0/.2` (1x1 convs `[C/r, C, 1, 1]` or Linear `[C/r, C]`,
    /// with or without bias) and `layerX.Y.cbam.spatial_attention.conv` `[1, 2, k, k]` over (mean, max).
    case canonical(mlp: MLPForm, name: String, bias: Bool)
    /// The CBAM authors' code: `layerX.Y.cbam.ChannelGate.mlp.1/.3` (Linear with bias),
    /// `layerX.Y.cbam.SpatialGate.spatial.conv` + `.spatial.bn`, pools in the order (max, mean).
    case authors
    /// No CBAM tensors at all (a plain ResNet, or a config with no attention).
    case none

    public enum MLPForm: String, Sendable { case conv, linear }

    public var description: String {
        switch self {
        case let .canonical(mlp, name, bias): "canonical (\(name) as \(mlp == .conv ? "1x1 convs" : "Linear"), \(bias ? "with" : "no") bias)"
        case .authors: "authors (ChannelGate/SpatialGate)"
        case .none: "none (no CBAM tensors)"
        }
    }

    /// Looks at the CBAM tensor names (prefix already stripped) and the rank of the first MLP weight.
    static func detect(in checkpoint: Checkpoint) throws(ModelError) -> CheckpointLayout {
        let cbamNames = checkpoint.names.filter { $0.contains(".cbam.") }
        if cbamNames.isEmpty { return .none }
        if cbamNames.contains(where: { $0.contains(".cbam.ChannelGate.") || $0.contains(".cbam.SpatialGate.") }) { return .authors }
        let name = cbamNames.contains { $0.contains(".cbam.channel_attention.fc.") } ? "fc" : "mlp"
        guard let first = cbamNames.first(where: { $0.hasSuffix(".cbam.channel_attention.\(name).0.weight") }),
              let shape = checkpoint.shape(of: first)
        else {
            // CBAM tensors, but none of the first MLP layer: let the missing-tensor check name it.
            return .canonical(mlp: .conv, name: name, bias: false)
        }
        let form: MLPForm
        switch shape.count {
        case 4: form = .conv
        case 2: form = .linear
        default:
            throw ModelError("shape_mismatch", "tensor \(first) has shape \(Checkpoint.format(shape)), expected a 1x1 conv [C/r,C,1,1] or a Linear [C/r,C]")
        }
        let bias = cbamNames.contains { $0.hasSuffix(".cbam.channel_attention.\(name).0.bias") }
        return .canonical(mlp: form, name: name, bias: bias)
    }

    /// Reads one block's CBAM (prefix `layerX.Y.cbam`) for `channels` channels in this layout.
    func readCBAM(_ prefix: String, channels: Int, reduction: Int, kernel: Int, from checkpoint: Checkpoint) throws(ModelError) -> CBAM {
        let hidden = max(channels / reduction, 1)
        let k = kernel
        switch self {
        case let .canonical(form, name, bias):
            let p = "\(prefix).channel_attention.\(name)"
            let w1Shape = form == .conv ? [hidden, channels, 1, 1] : [hidden, channels]
            let w2Shape = form == .conv ? [channels, hidden, 1, 1] : [channels, hidden]
            let w1 = try checkpoint.tensor("\(p).0.weight", shape: w1Shape)
            let w2 = try checkpoint.tensor("\(p).2.weight", shape: w2Shape)
            let b1 = bias ? try checkpoint.tensor("\(p).0.bias", shape: [hidden]) : [Float](repeating: 0, count: hidden)
            let b2 = bias ? try checkpoint.tensor("\(p).2.bias", shape: [channels]) : [Float](repeating: 0, count: channels)
            let conv = try checkpoint.tensor("\(prefix).spatial_attention.conv.weight", shape: [1, 2, k, k])
            return CBAM(channel: ChannelAttention(channels: channels, hidden: hidden, w1: w1, b1: b1, w2: w2, b2: b2),
                        spatial: SpatialAttention(kernel: k, weight: conv, bias: 0))
        case .authors:
            let p = "\(prefix).ChannelGate.mlp"
            let w1 = try checkpoint.tensor("\(p).1.weight", shape: [hidden, channels])
            let b1 = try checkpoint.tensor("\(p).1.bias", shape: [hidden])
            let w2 = try checkpoint.tensor("\(p).3.weight", shape: [channels, hidden])
            let b2 = try checkpoint.tensor("\(p).3.bias", shape: [channels])
            let s = "\(prefix).SpatialGate.spatial"
            let conv = try checkpoint.tensor("\(s).conv.weight", shape: [1, 2, k, k])
            let bn = try BatchNorm(reading: "\(s).bn", channels: 1, from: checkpoint)
            // Fold the BN into the convolution, and swap the (max, mean) input planes to (mean, max).
            let scale = bn.scale(0)
            let weight = (Array(conv[(k * k)...]) + Array(conv[..<(k * k)])).map { $0 * scale }
            return CBAM(channel: ChannelAttention(channels: channels, hidden: hidden, w1: w1, b1: b1, w2: w2, b2: b2),
                        spatial: SpatialAttention(kernel: k, weight: weight, bias: bn.shift(0)))
        case .none:
            return try CheckpointLayout.canonical(mlp: .conv, name: "mlp", bias: false)
                .readCBAM(prefix, channels: channels, reduction: reduction, kernel: kernel, from: checkpoint)
        }
    }
}

extension BatchNorm {
    /// Reads `prefix.weight/.bias/.running_mean/.running_var`, each `[channels]`.
    init(reading prefix: String, channels: Int, from checkpoint: Checkpoint) throws(ModelError) {
        self.init(weight: try checkpoint.tensor("\(prefix).weight", shape: [channels]),
                  bias: try checkpoint.tensor("\(prefix).bias", shape: [channels]),
                  runningMean: try checkpoint.tensor("\(prefix).running_mean", shape: [channels]),
                  runningVar: try checkpoint.tensor("\(prefix).running_var", shape: [channels]))
    }
}
