import CBAMEngine
import HTTPServer

// The JSON bodies of the /v1 and service routes, as typed values; `JSONBodyEncoder` writes them, fields in the
// order declared here (which is the order the OpenAPI document and the clients know).

/// One class of a prediction: `{"index", "label", "probability"}`.
public struct Prediction: Codable, Sendable, Equatable {
    public let index: Int
    public let label: String
    public let probability: Float

    public init(index: Int, label: String, probability: Float) {
        self.index = index
        self.label = label
        self.probability = probability
    }
}

/// The maps of one CBAM layer: `{"layer", "channel"?, "spatial"?: {"height", "width", "data"}}`; a map the client did
/// not ask for is left out.
public struct AttentionLayer: Codable, Sendable, Equatable {
    public struct Spatial: Codable, Sendable, Equatable {
        public let height: Int
        public let width: Int
        public let data: [Float]
    }

    public let layer: String
    public let channel: [Float]?
    public let spatial: Spatial?
    /// The spatial map was asked for but the layer's attention (SE, ECA) has none: written as `"spatial": null`.
    var spatialAbsent = false

    enum CodingKeys: String, CodingKey { case layer, channel, spatial }

    public init(_ map: AttentionMap, kind: AttentionKind = .all) {
        layer = map.layer
        channel = kind.includesChannel ? map.channel : nil
        spatial = kind.includesSpatial && map.hasSpatialMap
            ? Spatial(height: map.spatialHeight, width: map.spatialWidth, data: map.spatial) : nil
        spatialAbsent = kind.includesSpatial && !map.hasSpatialMap
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(layer, forKey: .layer)
        try c.encodeIfPresent(channel, forKey: .channel)
        if spatialAbsent { try c.encodeNil(forKey: .spatial) } else { try c.encodeIfPresent(spatial, forKey: .spatial) }
    }
}

/// The answer of `/v1/predict`: one image's result inline, or with multipart uploads one entry per file in `results`.
struct PredictionResponse: Encodable {
    struct ImageResult {
        let predictions: [Prediction]
        let attention: [AttentionLayer]?
    }

    struct FileResult: Encodable {
        let index: Int
        let filename: String?
        let result: ImageResult

        enum CodingKeys: String, CodingKey { case index, filename, predictions, attention }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(filename, forKey: .filename)  // null when the part had none
            try c.encode(result.predictions, forKey: .predictions)
            try c.encodeIfPresent(result.attention, forKey: .attention)
        }
    }

    /// Milliseconds, rounded to the microsecond.
    struct Timing: Encodable {
        let decodeMs, preprocessMs, queueMs, inferenceMs: Double
        let batchSize, batchRequests: Int
        let totalMs: Double

        enum CodingKeys: String, CodingKey {
            case decodeMs = "decode_ms", preprocessMs = "preprocess_ms", queueMs = "queue_ms", inferenceMs = "inference_ms"
            case batchSize = "batch_size", batchRequests = "batch_requests", totalMs = "total_ms"
        }
    }

    enum Body {
        case single(ImageResult)
        case files([FileResult])
    }

    let id: String
    let model: String
    let body: Body
    let timing: Timing

    enum CodingKeys: String, CodingKey { case id, model, predictions, attention, results, timing }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(model, forKey: .model)
        switch body {
        case .single(let result):
            try c.encode(result.predictions, forKey: .predictions)
            try c.encodeIfPresent(result.attention, forKey: .attention)
        case .files(let results):
            try c.encode(results, forKey: .results)
        }
        try c.encode(timing, forKey: .timing)
    }
}

/// The answer of `/v1/attention/{id}` as JSON.
struct StoredAttentionResponse: Encodable {
    struct Image: Encodable {
        let index: Int
        let filename: String?
        let attention: [AttentionLayer]

        enum CodingKeys: String, CodingKey { case index, filename, attention }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(filename, forKey: .filename)  // null when the upload had none
            try c.encode(attention, forKey: .attention)
        }
    }

    let id: String
    let model: String
    let images: [Image]
}

/// `/v1/models/{name}`: name, architecture, input, classes, CBAM layers with their map shapes, and size.
struct ModelDescription: Encodable {
    struct Architecture: Encodable {
        struct Attention: Encodable {
            /// "cbam", "se" or "eca".
            let type: String
            /// null for ECA (no MLP); each layer's own width is its `hidden`.
            let reduction: Int?
            /// CBAM's spatial kernel; null for SE (none) and ECA (each layer's own is its `kernel_size`).
            let kernelSize: Int?
            /// Only CBAM has a spatial map; SE and ECA layers have a channel map alone.
            let spatialMap: Bool
            enum CodingKeys: String, CodingKey { case type, reduction, kernelSize = "kernel_size", spatialMap = "spatial_map" }

            func encode(to encoder: any Encoder) throws {
                var c = encoder.container(keyedBy: CodingKeys.self)
                try c.encode(type, forKey: .type)
                try c.encode(reduction, forKey: .reduction)
                try c.encode(kernelSize, forKey: .kernelSize)
                try c.encode(spatialMap, forKey: .spatialMap)
            }
        }

        let family = "cbam-resnet"
        let block: String
        let layers: [Int]
        let widths: [Int]
        let stem: String
        let shortcut: String
        let attention: Attention?
        /// How the checkpoint's tensors were named (`CheckpointLayout`).
        let checkpointLayout: String

        enum CodingKeys: String, CodingKey {
            case family, block, layers, widths, stem, shortcut, attention, checkpointLayout = "checkpoint_layout"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(family, forKey: .family)
            try c.encode(block, forKey: .block)
            try c.encode(layers, forKey: .layers)
            try c.encode(widths, forKey: .widths)
            try c.encode(stem, forKey: .stem)
            try c.encode(shortcut, forKey: .shortcut)
            try c.encode(attention, forKey: .attention)  // null for a plain ResNet
            try c.encode(checkpointLayout, forKey: .checkpointLayout)
        }
    }

    struct Input: Encodable {
        let size: Int
        let resize: Int
        let mean: [Float]
        let std: [Float]
        let shape: [Int]
    }

    /// One layer with attention; `hidden` is null for ECA, `kernel_size` (CBAM's spatial or ECA's 1-D kernel) null for
    /// SE, `spatial_shape` null for SE and ECA (no spatial map).
    struct CBAMLayer: Encodable {
        let layer: String
        let type: String
        let channels: Int
        let hidden: Int?
        let kernelSize: Int?
        let channelShape: [Int]
        let spatialShape: [Int]?
        enum CodingKeys: String, CodingKey {
            case layer, type, channels, hidden, kernelSize = "kernel_size", channelShape = "channel_shape", spatialShape = "spatial_shape"
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(layer, forKey: .layer)
            try c.encode(type, forKey: .type)
            try c.encode(channels, forKey: .channels)
            try c.encode(hidden, forKey: .hidden)
            try c.encode(kernelSize, forKey: .kernelSize)
            try c.encode(channelShape, forKey: .channelShape)
            try c.encode(spatialShape, forKey: .spatialShape)
        }
    }

    let name: String
    let architecture: Architecture
    let input: Input
    let numClasses: Int
    let labels: [String]
    let cbamLayers: [CBAMLayer]
    let parameters: Int
    let multiplyAdds: Int
    let maxBatchSize: Int

    enum CodingKeys: String, CodingKey {
        case name, architecture, input, numClasses = "num_classes", labels, cbamLayers = "cbam_layers", parameters,
             multiplyAdds = "multiply_adds", maxBatchSize = "max_batch_size"
    }
}

/// `GET /v1/models`.
struct ModelList: Encodable {
    let models: [ModelDescription]
}

/// `GET /healthz` and `GET /readyz`.
struct HealthStatus: Encodable {
    let status: String
    let model: String?
}

/// The Open Inference Protocol's error object, which Triton's and KServe's clients parse, with the code alongside:
/// `{"error": "<message>", "code": "..."}`.
struct InferenceProtocolError: Encodable {
    let error: String
    let code: String
}
