import Foundation

/// `config.json` of a model directory (format "cbam-resnet/1").
///
/// ```
/// {"format": "cbam-resnet/1", "name": "...", "block": "basic"|"bottleneck", "layers": [3,4,6,3],
///  "widths": [64,128,256,512], "stem": "imagenet"|"cifar"|"deep", "shortcut": "conv"|"avgpool", "num_classes": 1000,
///  "attention": {"type": "cbam"|"se"|"eca", "reduction": 16, "kernel_size": 7, "stages": [true,true,true,true]},
///  "input": {"size": 224, "resize": 256, "mean": [...], "std": [...], "exif_transpose": true},
///  "rename": [["^model\\.", ""], ...]}
/// ```
/// `shortcut` (default "conv") and `rename` (default none) are optional.
public struct ModelConfig: Codable, Sendable, Equatable {
    public static let formatTag = "cbam-resnet/1"

    public enum Block: String, Codable, Sendable {
        case basic, bottleneck
        /// Output channels of a block over its width (torchvision's `expansion`).
        public var expansion: Int { self == .basic ? 1 : 4 }
    }

    public enum Stem: String, Codable, Sendable {
        /// 7x7/2 conv + BN + ReLU + 3x3/2 max-pool (torchvision's ResNet).
        case imagenet
        /// 3x3/1 conv + BN + ReLU, no pool.
        case cifar
        /// timm's deep stem: three 3x3 convs (the first stride 2; `conv1.0/.1`, `conv1.3/.4`, `conv1.6` + `bn1`), each
        /// but the last with BN + ReLU, then BN + ReLU + 3x3/2 max-pool; the first two widths are read from the tensors.
        case deep
    }

    /// How a block whose shape changes reaches its identity.
    public enum Shortcut: String, Codable, Sendable {
        /// 1x1 conv with the block's stride + BN (`downsample.0/.1`, torchvision).
        case conv
        /// 2x2/2 average pool (ceil mode, padding not counted) then 1x1 conv + BN (`downsample.1/.2`, timm's `avg_down`).
        case avgpool
    }

    public struct Attention: Codable, Sendable, Equatable {
        /// "cbam", "se" or "eca" (`AttentionType`).
        public var type: String
        /// CBAM and SE: channels over the MLP's hidden width. Where the checkpoint's layout has its own rounding
        /// (timm, `ca`/`sa`), the hidden width is read from the tensors instead.
        public var reduction: Int
        /// CBAM: the spatial kernel. ECA's 1-D kernels are read from the tensors (timm sizes them per block).
        public var kernelSize: Int
        /// Which stages have CBAM in their blocks.
        public var stages: [Bool]

        enum CodingKeys: String, CodingKey { case type, reduction, kernelSize = "kernel_size", stages }

        public init(type: String = "cbam", reduction: Int = 16, kernelSize: Int = 7, stages: [Bool]) {
            self.type = type
            self.reduction = reduction
            self.kernelSize = kernelSize
            self.stages = stages
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decodeIfPresent(String.self, forKey: .type) ?? "cbam"
            reduction = try c.decodeIfPresent(Int.self, forKey: .reduction) ?? 16
            kernelSize = try c.decodeIfPresent(Int.self, forKey: .kernelSize) ?? 7
            stages = try c.decode([Bool].self, forKey: .stages)
        }

        public var kind: AttentionType? { AttentionType(rawValue: type) }
    }

    public struct Input: Codable, Sendable, Equatable {
        public var size: Int
        public var resize: Int
        public var mean: [Float]
        public var std: [Float]
        /// Apply the EXIF orientation of uploaded JPEGs before preprocessing.
        public var exifTranspose: Bool

        enum CodingKeys: String, CodingKey { case size, resize, mean, std, exifTranspose = "exif_transpose" }

        public init(size: Int, resize: Int, mean: [Float], std: [Float], exifTranspose: Bool = true) {
            self.size = size
            self.resize = resize
            self.mean = mean
            self.std = std
            self.exifTranspose = exifTranspose
        }

        public init(from decoder: Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            size = try c.decode(Int.self, forKey: .size)
            resize = try c.decodeIfPresent(Int.self, forKey: .resize) ?? size
            mean = try c.decodeIfPresent([Float].self, forKey: .mean) ?? [0.485, 0.456, 0.406]
            std = try c.decodeIfPresent([Float].self, forKey: .std) ?? [0.229, 0.224, 0.225]
            exifTranspose = try c.decodeIfPresent(Bool.self, forKey: .exifTranspose) ?? true
        }
    }

    public var format: String
    public var name: String
    public var block: Block
    public var layers: [Int]
    public var widths: [Int]
    public var stem: Stem
    public var shortcut: Shortcut
    public var numClasses: Int
    /// nil: a plain ResNet with no attention.
    public var attention: Attention?
    public var input: Input
    /// `[regex, replacement]` pairs applied in order to every tensor name (after a `module.` prefix is stripped) before
    /// anything reads it (NSRegularExpression syntax, `$1` in the replacement for a group).
    public var rename: [[String]]?

    enum CodingKeys: String, CodingKey {
        case format, name, block, layers, widths, stem, shortcut, numClasses = "num_classes", attention, input, rename
    }

    public init(name: String, block: Block, layers: [Int], widths: [Int]? = nil, stem: Stem, shortcut: Shortcut = .conv,
                numClasses: Int, attention: Attention?, input: Input, rename: [[String]]? = nil) {
        self.format = Self.formatTag
        self.name = name
        self.block = block
        self.layers = layers
        self.widths = widths ?? Self.defaultWidths(stages: layers.count)
        self.stem = stem
        self.shortcut = shortcut
        self.numClasses = numClasses
        self.attention = attention
        self.input = input
        self.rename = rename
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decode(String.self, forKey: .format)
        name = try c.decode(String.self, forKey: .name)
        block = try c.decode(Block.self, forKey: .block)
        layers = try c.decode([Int].self, forKey: .layers)
        widths = try c.decodeIfPresent([Int].self, forKey: .widths) ?? Self.defaultWidths(stages: layers.count)
        stem = try c.decode(Stem.self, forKey: .stem)
        shortcut = try c.decodeIfPresent(Shortcut.self, forKey: .shortcut) ?? .conv
        numClasses = try c.decode(Int.self, forKey: .numClasses)
        attention = try c.decodeIfPresent(Attention.self, forKey: .attention)
        input = try c.decode(Input.self, forKey: .input)
        rename = try c.decodeIfPresent([[String]].self, forKey: .rename)
    }

    /// 64, 128, 256, 512, ... as in torchvision.
    public static func defaultWidths(stages: Int) -> [Int] { (0..<stages).map { 64 << $0 } }

    /// Reads and validates `config.json`.
    public static func load(from url: URL) throws -> ModelConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ModelError("config_not_found", "cannot read \(url.path): \(error.localizedDescription)")
        }
        let config: ModelConfig
        do { config = try JSONDecoder().decode(ModelConfig.self, from: data) } catch let error as DecodingError {
            throw ModelError.invalidConfig("\(url.lastPathComponent): \(Self.describe(error))")
        }
        try config.validate()
        return config
    }

    /// Checks the things the JSON types cannot say.
    public func validate() throws {
        func fail(_ m: String) -> ModelError { .invalidConfig(m) }
        guard format == Self.formatTag else { throw fail("format is \"\(format)\", expected \"\(Self.formatTag)\"") }
        guard !layers.isEmpty, layers.allSatisfy({ $0 >= 1 }) else { throw fail("layers must be a non-empty list of block counts >= 1, got \(layers)") }
        guard widths.count == layers.count else { throw fail("widths has \(widths.count) entries, layers has \(layers.count)") }
        guard widths.allSatisfy({ $0 >= 1 }) else { throw fail("widths must be >= 1, got \(widths)") }
        guard numClasses >= 1 else { throw fail("num_classes must be >= 1, got \(numClasses)") }
        if let a = attention {
            guard a.kind != nil else {
                throw fail("attention.type is \"\(a.type)\", expected one of \(AttentionType.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
            }
            guard a.reduction >= 1 else { throw fail("attention.reduction must be >= 1, got \(a.reduction)") }
            guard a.kernelSize >= 1, a.kernelSize % 2 == 1 else { throw fail("attention.kernel_size must be odd and >= 1, got \(a.kernelSize)") }
            guard a.stages.count == layers.count else { throw fail("attention.stages has \(a.stages.count) entries, layers has \(layers.count)") }
        }
        for (i, rule) in (rename ?? []).enumerated() where rule.count != 2 {
            throw fail("rename[\(i)] has \(rule.count) strings, expected [regex, replacement]")
        }
        guard input.size >= 1, input.resize >= input.size else { throw fail("input.resize (\(input.resize)) must be >= input.size (\(input.size)) >= 1") }
        guard input.mean.count == 3, input.std.count == 3, input.std.allSatisfy({ $0 > 0 }) else {
            throw fail("input.mean and input.std must have 3 values each, std > 0")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ p: [CodingKey]) -> String { p.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".") }
        switch error {
        case .keyNotFound(let key, let ctx): return "missing key \"\(path(ctx.codingPath + [key]))\""
        case .typeMismatch(_, let ctx), .valueNotFound(_, let ctx): return "bad value at \"\(path(ctx.codingPath))\": \(ctx.debugDescription)"
        case .dataCorrupted(let ctx): return "not valid JSON: \(ctx.debugDescription)"
        @unknown default: return "\(error)"
        }
    }
}

/// The attention module in each residual block.
public enum AttentionType: String, Codable, Sendable, CaseIterable {
    /// Channel and spatial attention (Woo et al., 2018).
    case cbam
    /// Squeeze-and-excitation (Hu et al., 2018): channel attention from the average pool through an MLP.
    case se
    /// Efficient channel attention (Wang et al., 2020): channel attention from a 1-D convolution across channels.
    case eca

    /// Whether the module has a spatial map (only CBAM).
    public var hasSpatialMap: Bool { self == .cbam }

    public var displayName: String {
        switch self {
        case .cbam: "CBAM"
        case .se: "SE"
        case .eca: "ECA"
        }
    }
}
