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
    public static func encode(modelName: String, modelVersion: String, id: String?, outputs: [InferenceOutput],
                              binary: (String) -> Bool) -> EncodedInferenceResponse {
        var json = "{\"model_name\":\(JSONText.string(modelName)),\"model_version\":\(JSONText.string(modelVersion))"
        if let id { json += ",\"id\":\(JSONText.string(id))" }
        json += ",\"outputs\":["
        var tail: [UInt8] = []
        for (index, output) in outputs.enumerated() {
            if index > 0 { json += "," }
            json += "{\"name\":\(JSONText.string(output.name)),\"datatype\":\"FP32\",\"shape\":["
                + output.shape.map(String.init).joined(separator: ",") + "]"
            if binary(output.name) {
                let size = output.values.count * 4
                json += ",\"parameters\":{\"binary_data_size\":\(size)}}"
                tail.reserveCapacity(tail.count + size)
                for value in output.values {
                    withUnsafeBytes(of: value.bitPattern.littleEndian) { tail.append(contentsOf: $0) }
                }
            } else {
                json += ",\"data\":" + JSONText.numbers(output.values) + "}"
            }
        }
        json += "]}"
        let header = Array(json.utf8)
        if tail.isEmpty && !outputs.contains(where: { binary($0.name) }) {
            return EncodedInferenceResponse(body: header, headerLength: nil)
        }
        return EncodedInferenceResponse(body: header + tail, headerLength: header.count)
    }
}
