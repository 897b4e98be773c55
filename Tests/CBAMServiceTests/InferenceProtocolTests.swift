import Foundation
import Testing
@testable import CBAMService
import HTTPServer

private func json(_ object: Any) -> [UInt8] { Array(try! JSONSerialization.data(withJSONObject: object)) }
private func littleEndian(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
}
private func bytesElement(_ bytes: [UInt8]) -> [UInt8] {
    withUnsafeBytes(of: UInt32(bytes.count).littleEndian) { Array($0) } + bytes
}

@Suite struct InferenceProtocolDecoderTests {
    @Test func decodesAJSONFP32TensorWithNestedData() throws {
        let body = json(["id": "r1", "inputs": [["name": "input", "datatype": "FP32", "shape": [1, 2, 2],
                                                 "data": [[[1.5, -2], [0.25, 3]]]]]])
        let request = try InferenceProtocolDecoder.decode(body: body, headerLength: nil, contentType: "application/json")
        #expect(request.id == "r1")
        #expect(request.inputs == [InferenceInput(name: "input", shape: [1, 2, 2], data: .fp32([1.5, -2, 0.25, 3]))])
        #expect(request.outputs == nil)
        #expect(!request.wantsBinary("logits"))
    }

    @Test func decodesBinaryFP32AndBYTESTensorsAfterTheJSONHeader() throws {
        let floats: [Float] = [0.5, -1, 2, 1e-3, 7, 8]
        let images: [[UInt8]] = [[0xFF, 0xD8, 1, 2], [0x89, 0x50]]
        let fpBytes = littleEndian(floats)
        let byteTensor = images.flatMap(bytesElement)
        let header = json([
            "inputs": [
                ["name": "input", "datatype": "FP32", "shape": [1, 6], "parameters": ["binary_data_size": fpBytes.count]],
                ["name": "image", "datatype": "BYTES", "shape": [2], "parameters": ["binary_data_size": byteTensor.count]],
            ],
            "outputs": [["name": "logits", "parameters": ["binary_data": true]], ["name": "probabilities"]],
            "parameters": ["binary_data_output": false, "timeout_ms": 250],
        ])
        let request = try InferenceProtocolDecoder.decode(body: header + fpBytes + byteTensor,
                                                          headerLength: String(header.count),
                                                          contentType: "application/octet-stream")
        #expect(request.inputs[0].data == .fp32(floats))
        #expect(request.inputs[1].data == .bytes(images))
        #expect(request.wantsBinary("logits"))
        #expect(!request.wantsBinary("probabilities"))
        #expect(request.timeoutMilliseconds == 250)
    }

    @Test func binaryDataOutputIsTheDefaultForOutputsThatNameNoPreference() throws {
        let body = json(["inputs": [["name": "image", "datatype": "BYTES", "shape": [1], "data": ["abc"]]],
                         "parameters": ["binary_data_output": true]])
        let request = try InferenceProtocolDecoder.decode(body: body, headerLength: nil, contentType: nil)
        #expect(request.inputs[0].data == .bytes([Array("abc".utf8)]))
        #expect(request.wantsBinary("logits"))
    }

    @Test(arguments: [
        ("{not json", nil, "invalid_json"),
        ("[1,2]", nil, "invalid_json"),
        ("{\"inputs\":[]}", nil, "missing_inputs"),
        ("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[3],\"data\":[1,2]}]}", nil, "shape_mismatch"),
        ("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[2],\"data\":[1,\"a\"]}]}", nil, "invalid_input"),
        ("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[true]}]}", nil, "invalid_input"),
        ("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"INT64\",\"shape\":[1],\"data\":[1]}]}", nil, "unsupported_datatype"),
        ("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[-1],\"data\":[1]}]}", nil, "invalid_input"),
        ("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1]}]}", nil, "invalid_input"),
        ("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"parameters\":{\"binary_data_size\":4}}]}", "91", "truncated_binary_data"),
        ("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}]}", "x", "invalid_header_length"),
        ("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}],\"parameters\":{\"binary_data_output\":\"yes\"}}", nil, "invalid_parameter"),
        // Integers are integers: not true (which JSONSerialization gives as 1), not 1.5.
        ("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[true],\"data\":[1]}]}", nil, "invalid_input"),
        ("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1.5],\"data\":[1]}]}", nil, "invalid_input"),
        ("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}],\"parameters\":{\"timeout_ms\":true}}", nil, "invalid_parameter"),
        ("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"data\":[1]}],\"parameters\":{\"timeout_ms\":2.5}}", nil, "invalid_parameter"),
        ("{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1],\"parameters\":{\"binary_data_size\":true}}]}", nil, "invalid_input"),
    ] as [(String, String?, String)])
    func rejectsMalformedRequestsWithATypedError(body: String, headerLength: String?, code: String) {
        #expect(throws: HTTPError.self) {
            try InferenceProtocolDecoder.decode(body: Array(body.utf8), headerLength: headerLength, contentType: nil)
        }
        do {
            _ = try InferenceProtocolDecoder.decode(body: Array(body.utf8), headerLength: headerLength, contentType: nil)
        } catch {
            #expect(error.code == code)
            #expect(error.status.code == 400)
            #expect(!error.message.isEmpty)
        }
    }

    @Test func rejectsBinaryDataOfTheWrongSizeOrLeftOver() throws {
        let header = json(["inputs": [["name": "x", "datatype": "FP32", "shape": [2], "parameters": ["binary_data_size": 4]]]])
        #expect(throws: HTTPError.badRequest("shape_mismatch",
            "input x: binary_data_size is 4 bytes, shape needs 2 FP32 values = 8 bytes")) {
            try InferenceProtocolDecoder.decode(body: header + [0, 0, 0, 0], headerLength: String(header.count), contentType: nil)
        }
        let ok = json(["inputs": [["name": "x", "datatype": "FP32", "shape": [1], "parameters": ["binary_data_size": 4]]]])
        do {
            _ = try InferenceProtocolDecoder.decode(body: ok + [0, 0, 0, 0, 9], headerLength: String(ok.count), contentType: nil)
            Issue.record("left-over bytes were accepted")
        } catch {
            #expect(error.code == "unused_binary_data")
        }
        let bytesHeader = json(["inputs": [["name": "i", "datatype": "BYTES", "shape": [1], "parameters": ["binary_data_size": 6]]]])
        do {
            _ = try InferenceProtocolDecoder.decode(body: bytesHeader + [9, 0, 0, 0, 1, 2], headerLength: String(bytesHeader.count), contentType: nil)
            Issue.record("a truncated BYTES element was accepted")
        } catch {
            #expect(error.code == "invalid_bytes_tensor")
        }
    }

    @Test func rejectsOtherContentTypesWith415() {
        do {
            _ = try InferenceProtocolDecoder.decode(body: Array("{}".utf8), headerLength: nil, contentType: "text/plain")
            Issue.record("text/plain was accepted")
        } catch {
            #expect(error.status.code == 415)
            #expect(error.code == "unsupported_media_type")
        }
    }
}

@Suite struct InferenceProtocolEncoderTests {
    let outputs = [InferenceOutput(name: "logits", shape: [1, 3], values: [1.5, -0.25, 3]),
                   InferenceOutput(name: "probabilities", shape: [1, 3], values: [0.2, 0.3, 0.5])]

    @Test func encodesJSONOutputs() throws {
        let encoded = InferenceProtocolEncoder.encode(modelName: "m", modelVersion: "1", id: "abc", outputs: outputs,
                                                      binary: { _ in false })
        #expect(encoded.headerLength == nil)
        #expect(encoded.contentType == "application/json")
        let object = try JSONSerialization.jsonObject(with: Data(encoded.body)) as! [String: Any]
        #expect(object["model_name"] as? String == "m")
        #expect(object["id"] as? String == "abc")
        let first = (object["outputs"] as! [[String: Any]])[0]
        #expect(first["name"] as? String == "logits")
        #expect(first["datatype"] as? String == "FP32")
        #expect(first["shape"] as? [Int] == [1, 3])
        #expect((first["data"] as? [Double])?.map(Float.init) == [1.5, -0.25, 3])
    }

    @Test func encodesBinaryOutputsAfterTheHeaderInOrder() throws {
        let encoded = InferenceProtocolEncoder.encode(modelName: "m", modelVersion: "1", id: nil, outputs: outputs,
                                                      binary: { $0 == "probabilities" })
        let headerLength = try #require(encoded.headerLength)
        #expect(encoded.contentType == "application/octet-stream")
        let object = try JSONSerialization.jsonObject(with: Data(encoded.body[0..<headerLength])) as! [String: Any]
        let list = object["outputs"] as! [[String: Any]]
        #expect(list[0]["data"] != nil)
        #expect(list[1]["data"] == nil)
        #expect((list[1]["parameters"] as? [String: Any])?["binary_data_size"] as? Int == 12)
        #expect(Array(encoded.body[headerLength...]) == littleEndian([0.2, 0.3, 0.5]))
    }

    @Test func floatsRoundTripThroughJSONExactly() throws {
        let values: [Float] = [0.1, 1e-7, -3.4028235e38, 123456.79, 0]
        let encoded = InferenceProtocolEncoder.encode(modelName: "m", modelVersion: "1", id: nil,
            outputs: [InferenceOutput(name: "logits", shape: [5], values: values)], binary: { _ in false })
        let object = try JSONSerialization.jsonObject(with: Data(encoded.body)) as! [String: Any]
        let data = ((object["outputs"] as! [[String: Any]])[0]["data"] as! [NSNumber]).map(\.floatValue)
        #expect(data == values)
    }
}
