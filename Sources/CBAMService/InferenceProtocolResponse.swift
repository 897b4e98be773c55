import HTTPServer

/// One output tensor of an inference response.
public struct InferenceOutput: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var values: [Float]     // this model's outputs are all FP32

    public init(name: String, shape: [Int], values: [Float]) {
        self.name = name
        self.shape = shape
        self.values = values
    }
}

/// An encoded response body and, when it carries binary tensors, the length of its JSON header.
public struct EncodedInferenceResponse: Sendable {
    public var body: [UInt8]
    /// Value for `Inference-Header-Content-Length`; nil for a pure JSON body.
    public var headerLength: Int?
    public var contentType: String { headerLength == nil ? "application/json" : "application/octet-stream" }
}

/// Writes Open Inference Protocol responses; outputs asked for as binary data follow the JSON, in output order.
public enum InferenceProtocolEncoder {
    /// The JSON part: `{"model_name", "model_version", "id"?, "outputs": [{"name", "datatype", "shape", "data" |
    /// "parameters": {"binary_data_size"}}]}`.
    struct Header: Encodable {
        struct Output: Encodable {
            struct Parameters: Encodable {
                let binaryDataSize: Int
                enum CodingKeys: String, CodingKey { case binaryDataSize = "binary_data_size" }
            }

            let name: String
            let datatype = "FP32"
            let shape: [Int]
            let parameters: Parameters?
            let data: [Float]?

            enum CodingKeys: String, CodingKey { case name, datatype, shape, parameters, data }
        }

        let modelName: String
        let modelVersion: String
        let id: String?
        let outputs: [Output]

        enum CodingKeys: String, CodingKey { case modelName = "model_name", modelVersion = "model_version", id, outputs }
    }

    public static func encode(modelName: String, modelVersion: String, id: String?, outputs: [InferenceOutput],
                              binary: (String) -> Bool) -> EncodedInferenceResponse {
        var tail: [UInt8] = []
        var anyBinary = false
        let described = outputs.map { output -> Header.Output in
            guard binary(output.name) else {
                return .init(name: output.name, shape: output.shape, parameters: nil, data: output.values)
            }
            anyBinary = true
            let size = output.values.count * 4
            tail.reserveCapacity(tail.count + size)
            for value in output.values {
                withUnsafeBytes(of: value.bitPattern.littleEndian) { tail.append(contentsOf: $0) }
            }
            return .init(name: output.name, shape: output.shape, parameters: .init(binaryDataSize: size), data: nil)
        }
        // Strings, integers and floats only: nothing in it can fail to encode.
        let header = (try? JSONBodyEncoder.encode(Header(modelName: modelName, modelVersion: modelVersion, id: id, outputs: described)))
            ?? Array(#"{"outputs":[]}"#.utf8)
        guard anyBinary else { return EncodedInferenceResponse(body: header, headerLength: nil) }
        return EncodedInferenceResponse(body: header + tail, headerLength: header.count)
    }
}

/// `GET /v2`.
struct ServerMetadata: Encodable {
    let name: String
    let version: String
    let extensions: [String]
}

/// `GET /v2/models/{name}`: the batch dimension is -1 (dynamic, up to the configured maximum batch size).
struct ModelMetadata: Encodable {
    struct Tensor: Encodable {
        let name: String
        let datatype: String
        let shape: [Int]
    }

    let name: String
    let versions: [String]
    let platform: String
    let inputs: [Tensor]
    let outputs: [Tensor]
}

/// `GET /v2/models/{name}/config`: Triton's model configuration, what `perf_analyzer` reads.
struct TritonModelConfig: Encodable {
    struct Input: Encodable {
        let name: String
        let dataType: String
        let format: String?
        let dims: [Int]
        let optional: Bool
        enum CodingKeys: String, CodingKey { case name, dataType = "data_type", format, dims, optional }
    }

    struct Output: Encodable {
        let name: String
        let dataType: String
        let dims: [Int]
        enum CodingKeys: String, CodingKey { case name, dataType = "data_type", dims }
    }

    struct DynamicBatching: Encodable {
        let maxQueueDelayMicroseconds: Int
        enum CodingKeys: String, CodingKey { case maxQueueDelayMicroseconds = "max_queue_delay_microseconds" }
    }

    let name: String
    let platform: String
    let backend: String
    let maxBatchSize: Int
    let input: [Input]
    let output: [Output]
    let dynamicBatching: DynamicBatching

    enum CodingKeys: String, CodingKey {
        case name, platform, backend, maxBatchSize = "max_batch_size", input, output, dynamicBatching = "dynamic_batching"
    }
}
