import Foundation

/// `config.json` of a model directory (format "cbam-resnet/1").
///
/// ```
/// {"format": "cbam-resnet/1", "name": "...", "block": "basic"|"bottleneck", "layers": [3,4,6,3],
///  "widths": [64,128,256,512], "stem": "imagenet"|"cifar", "num_classes": 1000,
///  "attention": {"type": "cbam", "reduction": 16, "kernel_size": 7, "stages": [true,true,true,true]},
///  "input": {"size": 224, "resize": 256, "mean": [...], "std": [...], "exif_transpose": true}}
/// ```
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
    }

    public struct Attention: Codable, Sendable, Equatable {
        public var type: String
        public var reduction: Int
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
    public var numClasses: Int
    /// nil: a plain ResNet with no attention.
    public var attention: Attention?
    public var input: Input

    enum CodingKeys: String, CodingKey {
        case format, name, block, layers, widths, stem, numClasses = "num_classes", attention, input
    }

    public init(name: String, block: Block, layers: [Int], widths: [Int]? = nil, stem: Stem, numClasses: Int,
                attention: Attention?, input: Input) {
        self.format = Self.formatTag
        self.name = name
        self.block = block
        self.layers = layers
        self.widths = widths ?? Self.defaultWidths(stages: layers.count)
        self.stem = stem
        self.numClasses = numClasses
        self.attention = attention
        self.input = input
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        format = try c.decode(String.self, forKey: .format)
        name = try c.decode(String.self, forKey: .name)
        block = try c.decode(Block.self, forKey: .block)
        layers = try c.decode([Int].self, forKey: .layers)
        widths = try c.decodeIfPresent([Int].self, forKey: .widths) ?? Self.defaultWidths(stages: layers.count)
        stem = try c.decode(Stem.self, forKey: .stem)
        numClasses = try c.decode(Int.self, forKey: .numClasses)
        attention = try c.decodeIfPresent(Attention.self, forKey: .attention)
        input = try c.decode(Input.self, forKey: .input)
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
            guard a.type == "cbam" else { throw fail("attention.type is \"\(a.type)\", only \"cbam\" is supported") }
            guard a.reduction >= 1 else { throw fail("attention.reduction must be >= 1, got \(a.reduction)") }
            guard a.kernelSize >= 1, a.kernelSize % 2 == 1 else { throw fail("attention.kernel_size must be odd and >= 1, got \(a.kernelSize)") }
            guard a.stages.count == layers.count else { throw fail("attention.stages has \(a.stages.count) entries, layers has \(layers.count)") }
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
