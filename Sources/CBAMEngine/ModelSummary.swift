/// What `cbam-serve inspect` shows of a model: its shape, size and cost, and where its attention maps are.
public struct ModelSummary: Sendable, Codable, Equatable {
    public struct CBAMLayer: Sendable, Codable, Equatable {
        /// "layerX.Y".
        public let layer: String
        /// Length of the channel map.
        public let channels: Int
        public let hidden: Int
        public let spatialHeight: Int
        public let spatialWidth: Int

        enum CodingKeys: String, CodingKey {
            case layer, channels, hidden, spatialHeight = "spatial_height", spatialWidth = "spatial_width"
        }
    }

    public let name: String
    public let block: String
    public let layers: [Int]
    public let widths: [Int]
    public let stem: String
    public let numClasses: Int
    public let checkpointLayout: String
    /// Trainable parameters, as PyTorch counts them (BN running statistics excluded).
    public let parameters: Int
    /// Multiply-adds of one image at `inputHeight × inputWidth`.
    public let multiplyAdds: Int
    public let inputHeight: Int
    public let inputWidth: Int
    public let cbamLayers: [CBAMLayer]

    enum CodingKeys: String, CodingKey {
        case name, block, layers, widths, stem, numClasses = "num_classes", checkpointLayout = "checkpoint_layout",
             parameters, multiplyAdds = "multiply_adds", inputHeight = "input_height", inputWidth = "input_width",
             cbamLayers = "cbam_layers"
    }
}
