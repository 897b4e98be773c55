/// How a checkpoint names and shapes its attention tensors, detected from the names and shapes themselves.
/// `layerX.Y` below is a residual block; the ResNet's own names are torchvision's (timm's deep stem and
/// average-pool shortcut aside, which the config's `stem` and `shortcut` describe).
public enum CheckpointLayout: Equatable, Sendable, CustomStringConvertible {
    /// CBAM as this project writes it: `layerX.Y.cbam.channel_attention.{mlp|fc}.0/.2` (1x1 convs `[C/r, C, 1, 1]` or
    /// Linear `[C/r, C]`, with or without bias) and `layerX.Y.cbam.spatial_attention.conv` `[1, 2, k, k]` over (mean, max).
    case canonical(mlp: MLPForm, name: String, bias: Bool)
    /// The CBAM authors' code: `layerX.Y.cbam.ChannelGate.mlp.1/.3` (Linear with bias),
    /// `layerX.Y.cbam.SpatialGate.spatial.conv` + `.spatial.bn`, pools in the order (max, mean).
    case authors
    /// timm's ResNets, whose attention module is `layerX.Y.se` whatever its type: CBAM `se.channel.fc1/fc2` +
    /// `se.spatial.conv.conv` + `.conv.bn` (mean, max); SE `se.fc1/fc2` with biases; ECA `se.conv` `[1, 1, k]`.
    case timm(AttentionType)
    /// The widely copied stand-alone CBAM code: `layerX.Y.ca.fc1/fc2` (1x1 convs) and `layerX.Y.sa.conv1` `[1, 2, k, k]`
    /// over (mean, max).
    case caSa
    /// No attention tensors at all (a plain ResNet, or a config with no attention).
    case none

    public enum MLPForm: String, Sendable { case conv, linear }

    public var description: String {
        switch self {
        case let .canonical(mlp, name, bias): "canonical (\(name) as \(mlp == .conv ? "1x1 convs" : "Linear"), \(bias ? "with" : "no") bias)"
        case .authors: "authors (ChannelGate/SpatialGate)"
        case .timm(let type): "timm (\(type.displayName) as layerX.Y.se)"
        case .caSa: "ca/sa (CBAM as layerX.Y.ca + layerX.Y.sa)"
        case .none: "none (no attention tensors)"
        }
    }

    /// The attention type the layout holds; nil for `.none`.
    public var attentionType: AttentionType? {
        switch self {
        case .canonical, .authors, .caSa: .cbam
        case .timm(let type): type
        case .none: nil
        }
    }

    /// What detection looks for, in the order it tries: a marker inside a block's names, the layout, an example.
    static let markers: [(marker: String, layout: CheckpointLayout, example: String)] = [
        (".cbam.ChannelGate.", .authors, "layer1.0.cbam.ChannelGate.mlp.1.weight"),
        (".cbam.SpatialGate.", .authors, "layer1.0.cbam.SpatialGate.spatial.conv.weight"),
        (".cbam.channel_attention.", .canonical(mlp: .conv, name: "mlp", bias: false), "layer1.0.cbam.channel_attention.mlp.0.weight"),
        (".cbam.spatial_attention.", .canonical(mlp: .conv, name: "mlp", bias: false), "layer1.0.cbam.spatial_attention.conv.weight"),
        (".se.channel.", .timm(.cbam), "layer1.0.se.channel.fc1.weight"),
        (".se.spatial.", .timm(.cbam), "layer1.0.se.spatial.conv.conv.weight"),
        (".se.fc1.", .timm(.se), "layer1.0.se.fc1.weight"),
        (".se.conv.", .timm(.eca), "layer1.0.se.conv.weight"),
        (".ca.", .caSa, "layer1.0.ca.fc1.weight"),
        (".sa.", .caSa, "layer1.0.sa.conv1.weight"),
    ]

    /// Names every ResNet has (stem, blocks' convs and BNs, shortcut, classifier); the rest is attention.
    static func isResNetName(_ name: String) -> Bool {
        let parts = name.split(separator: ".")
        guard let head = parts.first else { return false }
        if head == "conv1" || head == "bn1" || head == "fc" { return true }
        guard head.hasPrefix("layer"), parts.count >= 4 else { return false }
        let module = parts[2]
        return module == "downsample" || ((module.hasPrefix("conv") || module.hasPrefix("bn")) && parts.count == 4)
    }

    /// Finds the layout of the attention tensors (names already renamed and without `module.`), and checks it holds
    /// the attention type the config asks for.
    static func detect(in checkpoint: Checkpoint, attention: AttentionType?) throws(ModelError) -> CheckpointLayout {
        guard let attention else { return .none }
        let names = checkpoint.names.filter { !isResNetName($0) }
        var found: (CheckpointLayout, String)?
        for (marker, layout, _) in markers {
            if let name = names.first(where: { $0.contains(marker) }) { found = (layout, name); break }
        }
        guard let (layout, example) = found else {
            let unmatched = names.prefix(5)
            throw ModelError("unknown_layout",
                             "config asks for \(attention.displayName) attention, but no tensor is in a known layout; "
                                 + (unmatched.isEmpty ? "the checkpoint has no attention tensors at all"
                                    : "first names that are not the ResNet's: \(unmatched.joined(separator: ", "))\(names.count > 5 ? ", ... (\(names.count) in all)" : "")")
                                 + "; layouts tried: \(layoutsTried); a \"rename\" list in config.json can map other names onto one of these")
        }
        guard layout.attentionType == attention else {
            throw ModelError("attention_type_mismatch",
                             "config attention.type is \"\(attention.rawValue)\", but tensor \(example) is \(layout.attentionType!.displayName) attention in the \(layout) layout")
        }
        if case .canonical = layout { return try canonicalForm(checkpoint) }
        return layout
    }

    static var layoutsTried: String {
        "canonical (layer1.0.cbam.channel_attention.mlp.0.weight), authors (layer1.0.cbam.ChannelGate.mlp.1.weight), "
            + "timm (layer1.0.se.channel.fc1.weight, layer1.0.se.fc1.weight, layer1.0.se.conv.weight), ca/sa (layer1.0.ca.fc1.weight)"
    }

    /// The canonical layout's MLP name, form (from the rank of its first weight) and bias.
    private static func canonicalForm(_ checkpoint: Checkpoint) throws(ModelError) -> CheckpointLayout {
        let cbamNames = checkpoint.names.filter { $0.contains(".cbam.") }
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
