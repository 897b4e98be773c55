/// What `cbam-serve inspect` shows of a model: its shape, size and cost, and where its attention maps are.
public struct ModelSummary: Sendable, Codable, Equatable {
    public struct CBAMLayer: Sendable, Codable, Equatable {
        /// "layerX.Y".
        public let layer: String
        /// "cbam", "se" or "eca".
        public let type: String
        /// Length of the channel map.
        public let channels: Int
        /// Width of the channel MLP (CBAM, SE); nil for ECA.
        public let hidden: Int?
        /// The spatial kernel (CBAM) or the 1-D kernel across channels (ECA); nil for SE.
        public let kernelSize: Int?
        /// The spatial map's size; nil where the module has no spatial map (SE, ECA).
        public let spatialHeight: Int?
        public let spatialWidth: Int?

        enum CodingKeys: String, CodingKey {
            case layer, type, channels, hidden, kernelSize = "kernel_size", spatialHeight = "spatial_height", spatialWidth = "spatial_width"
        }
    }

    public let name: String
    public let block: String
    public let layers: [Int]
    public let widths: [Int]
    public let stem: String
    /// "conv" or "avgpool".
    public let shortcut: String
    public let numClasses: Int
    /// "cbam", "se", "eca"; nil for a plain ResNet.
    public let attentionType: String?
    public let checkpointLayout: String
    /// Trainable parameters, as PyTorch counts them (BN running statistics excluded).
    public let parameters: Int
    /// Multiply-adds of one image at `inputHeight × inputWidth`.
    public let multiplyAdds: Int
    public let inputHeight: Int
    public let inputWidth: Int
    public let cbamLayers: [CBAMLayer]

    enum CodingKeys: String, CodingKey {
        case name, block, layers, widths, stem, shortcut, numClasses = "num_classes", attentionType = "attention_type",
             checkpointLayout = "checkpoint_layout",
             parameters, multiplyAdds = "multiply_adds", inputHeight = "input_height", inputWidth = "input_width",
             cbamLayers = "cbam_layers"
    }
}
