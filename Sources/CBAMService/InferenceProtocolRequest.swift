import Foundation
#if canImport(HTTPServer)  // tools/fuzz-oip.sh builds this file and HTTPCore's sources as one module
import HTTPServer
#endif

// Binary FP32 tensors are little-endian on the wire and copied as they are.
#if _endian(big)
#error("the binary tensor decoding assumes a little-endian host")
#endif

/// The data of one tensor of the Open Inference Protocol (KServe v2), as far as this service reads it.
public enum TensorData: Sendable, Equatable {
    case fp32([Float])
    /// BYTES elements, e.g. encoded images.
    case bytes([[UInt8]])

    public var datatype: String {
        switch self {
        case .fp32: return "FP32"
        case .bytes: return "BYTES"
        }
    }

    public var elementCount: Int {
        switch self {
        case .fp32(let values): return values.count
        case .bytes(let elements): return elements.count
        }
    }
}

public struct InferenceInput: Sendable, Equatable {
    public var name: String
    public var shape: [Int]
    public var data: TensorData
}

public struct RequestedOutput: Sendable, Equatable {
    public var name: String
    /// The `binary_data` parameter; nil when the request left it to `binary_data_output`.
    public var binary: Bool?
}

/// A decoded `POST /v2/models/{name}/infer` request.
public struct InferenceRequest: Sendable, Equatable {
    public var id: String?
    public var inputs: [InferenceInput]
    /// nil: the request asked for every output.
    public var outputs: [RequestedOutput]?
    /// The request-level `binary_data_output` parameter.
    public var binaryDataOutput: Bool
    /// Our own request parameter `timeout_ms`, overriding the server's request timeout.
    public var timeoutMilliseconds: Int?

    /// Whether output `name` goes back as binary data.
    public func wantsBinary(_ name: String) -> Bool {
        outputs?.first(where: { $0.name == name })?.binary ?? binaryDataOutput
    }
}

/// Reads Open Inference Protocol request bodies: plain JSON, or JSON followed by binary tensor data whose JSON
/// length is given by the `Inference-Header-Content-Length` header (the binary tensor data extension).
public enum InferenceProtocolDecoder {
    public static let headerLengthField = "Inference-Header-Content-Length"

    /// Decodes `body`. `headerLength` is the value of `Inference-Header-Content-Length`, if the request had one;
    /// `contentType` is the request's `Content-Type`, if any.
    public static func decode(body: [UInt8], headerLength: String?, contentType: String?) throws(HTTPError)
        -> InferenceRequest
    {
        if let contentType {
            let mediaType = HTTPRequest.mediaType(of: contentType)
            guard mediaType.isEmpty || mediaType == "application/json" || mediaType == "application/octet-stream" else {
                throw HTTPError(status: 415, code: "unsupported_media_type",
                                   message: "an inference request is application/json, or application/octet-stream with the \(headerLengthField) header; got \(contentType)")
            }
        }
        var jsonLength = body.count
        if let headerLength {
            guard let n = Int(headerLength.trimmingCharacters(in: .whitespaces)), n >= 0, n <= body.count else {
                throw .badRequest("invalid_header_length",
                                  "\(headerLengthField) must be a byte count between 0 and the body length \(body.count), got \"\(headerLength)\"")
            }
            jsonLength = n
        }
        let object: [String: Any]
        do {
            let parsed = try JSONSerialization.jsonObject(with: Data(body[0..<jsonLength]))
            guard let dictionary = parsed as? [String: Any] else { throw HTTPError.badRequest("invalid_json", "the inference request must be a JSON object") }
            object = dictionary
        } catch let error as HTTPError {
            throw error
        } catch {
            throw .badRequest("invalid_json", "the inference request is not valid JSON (\(jsonLength) bytes read as JSON)")
        }
        var binary = BinaryCursor(bytes: body, offset: jsonLength)
        guard let rawInputs = object["inputs"] as? [[String: Any]], !rawInputs.isEmpty else {
            throw .badRequest("missing_inputs", "the inference request needs a non-empty \"inputs\" array of tensor objects")
        }
        var inputs: [InferenceInput] = []
        for raw in rawInputs { inputs.append(try decodeInput(raw, binary: &binary)) }
        if binary.remaining != 0 {
            throw .badRequest("unused_binary_data",
                              "the body has \(binary.remaining) bytes of binary data that no input's binary_data_size claims")
        }
        let parameters = object["parameters"] as? [String: Any] ?? [:]
        var outputs: [RequestedOutput]?
        if let rawOutputs = object["outputs"] {
            guard let list = rawOutputs as? [[String: Any]] else {
                throw .badRequest("invalid_outputs", "\"outputs\" must be an array of objects with a \"name\"")
            }
            outputs = try list.map { (entry) throws(HTTPError) -> RequestedOutput in
                guard let name = entry["name"] as? String else {
                    throw .badRequest("invalid_outputs", "every requested output needs a \"name\" string")
                }
                let outputParameters = entry["parameters"] as? [String: Any]
                return RequestedOutput(name: name, binary: try bool(outputParameters?["binary_data"], "binary_data"))
            }
        }
        var timeout: Int?
        if let value = parameters["timeout_ms"] {
            guard let milliseconds = integer(value), milliseconds > 0 else {
                throw .badRequest("invalid_parameter", "parameter timeout_ms must be a positive integer")
            }
            timeout = milliseconds
        }
        return InferenceRequest(id: object["id"] as? String, inputs: inputs, outputs: outputs,
                                binaryDataOutput: try bool(parameters["binary_data_output"], "binary_data_output") ?? false,
                                timeoutMilliseconds: timeout)
    }

    private static func bool(_ value: Any?, _ name: String) throws(HTTPError) -> Bool? {
        guard let value else { return nil }
        guard let flag = value as? Bool, isJSONBoolean(value) else {
            throw .badRequest("invalid_parameter", "parameter \(name) must be true or false")
        }
        return flag
    }

    private static func decodeInput(_ raw: [String: Any], binary: inout BinaryCursor) throws(HTTPError) -> InferenceInput {
        guard let name = raw["name"] as? String else {
            throw .badRequest("invalid_input", "every input needs a \"name\" string")
        }
        guard let datatype = raw["datatype"] as? String else {
            throw .badRequest("invalid_input", "input \(name) needs a \"datatype\" (FP32 or BYTES)")
        }
        let rawShape = raw["shape"] as? [Any]
        let shape = rawShape?.compactMap(integer) ?? []
        guard let rawShape, shape.count == rawShape.count, shape.allSatisfy({ $0 >= 0 }) else {
            throw .badRequest("invalid_input", "input \(name) needs a \"shape\" of non-negative integers")
        }
        let (elements, overflow) = shape.reduce((1, false)) { acc, d in
            let (p, o) = acc.0.multipliedReportingOverflow(by: d)
            return (p, acc.1 || o)
        }
        guard !overflow, elements <= 1 << 28 else {
            throw .badRequest("invalid_input", "input \(name) has shape \(shape), which is too large")
        }
        let parameters = raw["parameters"] as? [String: Any] ?? [:]
        let data: TensorData
        if let sizeValue = parameters["binary_data_size"] {
            guard let size = integer(sizeValue), size >= 0 else {
                throw .badRequest("invalid_input", "input \(name): binary_data_size must be a non-negative integer")
            }
            guard let chunk = binary.take(size) else {
                throw .badRequest("truncated_binary_data",
                                  "input \(name) claims \(size) bytes of binary data, but only \(binary.remaining) remain in the body")
            }
            data = try decodeBinary(chunk, datatype: datatype, elements: elements, name: name)
        } else {
            guard let rawData = raw["data"] else {
                throw .badRequest("invalid_input", "input \(name) has neither \"data\" nor a binary_data_size parameter")
            }
            data = try decodeJSON(rawData, datatype: datatype, elements: elements, name: name)
        }
        return InferenceInput(name: name, shape: shape, data: data)
    }

    private static func decodeBinary(_ chunk: ArraySlice<UInt8>, datatype: String, elements: Int, name: String)
        throws(HTTPError) -> TensorData
    {
        switch datatype {
        case "FP32":
            guard chunk.count == elements * 4 else {
                throw .badRequest("shape_mismatch",
                                  "input \(name): binary_data_size is \(chunk.count) bytes, shape needs \(elements) FP32 values = \(elements * 4) bytes")
            }
            var values = [Float](repeating: 0, count: elements)
            values.withUnsafeMutableBytes { destination in
                chunk.withUnsafeBytes { source in destination.copyMemory(from: source) }
            }
            return .fp32(values)
        case "BYTES":
            var cursor = BinaryCursor(bytes: Array(chunk), offset: 0)
            var items: [[UInt8]] = []
            while cursor.remaining > 0 {
                guard let lengthBytes = cursor.take(4) else {
                    throw .badRequest("invalid_bytes_tensor", "input \(name): a BYTES element's 4-byte length is cut off")
                }
                let length = lengthBytes.enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
                guard let element = cursor.take(length) else {
                    throw .badRequest("invalid_bytes_tensor",
                                      "input \(name): a BYTES element claims \(length) bytes, only \(cursor.remaining) remain")
                }
                items.append(Array(element))
            }
            guard items.count == elements else {
                throw .badRequest("shape_mismatch", "input \(name): shape needs \(elements) BYTES elements, the data has \(items.count)")
            }
            return .bytes(items)
        default:
            throw unsupported(datatype, name)
        }
    }

    private static func decodeJSON(_ raw: Any, datatype: String, elements: Int, name: String) throws(HTTPError) -> TensorData {
        // Not reserved from the shape: that is the client's word, and [1 << 28] would reserve 8 GiB for "data": [].
        var flat: [Any] = []
        flatten(raw, into: &flat)
        guard flat.count == elements else {
            throw .badRequest("shape_mismatch", "input \(name): shape needs \(elements) values, \"data\" has \(flat.count)")
        }
        switch datatype {
        case "FP32":
            var values = [Float]()
            values.reserveCapacity(elements)
            for item in flat {
                guard let number = item as? NSNumber, !isJSONBoolean(item) else {
                    throw .badRequest("invalid_input", "input \(name): FP32 data must be numbers")
                }
                values.append(number.floatValue)
            }
            return .fp32(values)
        case "BYTES":
            var items: [[UInt8]] = []
            for item in flat {
                guard let string = item as? String else {
                    throw .badRequest("invalid_input", "input \(name): BYTES data in JSON must be strings")
                }
                items.append(Array(string.utf8))
            }
            return .bytes(items)
        default:
            throw unsupported(datatype, name)
        }
    }

    private static func unsupported(_ datatype: String, _ name: String) -> HTTPError {
        .badRequest("unsupported_datatype", "input \(name) has datatype \(datatype); this model takes FP32 tensors or BYTES images")
    }

    /// A JSON integer: a number without a fraction, and not true or false (which also come back as NSNumber).
    private static func integer(_ value: Any) -> Int? {
        guard let number = value as? NSNumber, !isJSONBoolean(number),
              number.doubleValue == Double(number.intValue) else { return nil }
        return number.intValue
    }

    /// JSONSerialization hands back true/false as NSNumber too; only their class tells them from 1 and 0.
    private static func isJSONBoolean(_ value: Any) -> Bool {
        String(describing: type(of: value)).hasSuffix("Boolean")
    }

    private static func flatten(_ value: Any, into out: inout [Any]) {
        if let array = value as? [Any] {
            for element in array { flatten(element, into: &out) }
        } else {
            out.append(value)
        }
    }
}

/// Reads consecutive chunks of a byte array.
struct BinaryCursor {
    let bytes: [UInt8]
    var offset: Int

    var remaining: Int { bytes.count - offset }

    mutating func take(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, count <= remaining else { return nil }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }
}
