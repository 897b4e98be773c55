import CBAMEngine
import Foundation
import Testing
@testable import CBAMService

private func npy() throws -> NPYArray {
    try NPY.read(contentsOf: Fixtures.modelDirectory.appendingPathComponent("input.npy"))
}

private func floats(_ bytes: ArraySlice<UInt8>) -> [Float] {
    stride(from: bytes.startIndex, to: bytes.endIndex, by: 4).map { i in
        Float(bitPattern: UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24)
    }
}

extension EndToEnd {
    @Suite struct InferenceProtocol {
        @Test func metadataReadinessAndConfig() async throws {
            let live = try LiveServer()
            try await live.serving {
                let server = try await live.request("GET", "/v2").json()
                #expect((server["extensions"] as? [String])?.contains("binary_tensor_data") == true)
                #expect(try await live.request("GET", "/v2/health/live").status == 200)
                #expect(try await live.request("GET", "/v2/health/ready").status == 200)
                #expect(try await live.request("GET", "/v2/models/\(Fixtures.modelName)/ready").status == 200)
                let metadata = try await live.request("GET", "/v2/models/\(Fixtures.modelName)").json()
                #expect(metadata["name"] as? String == Fixtures.modelName)
                let inputs = try #require(metadata["inputs"] as? [[String: Any]])
                #expect(inputs[0]["name"] as? String == "input" && inputs[0]["shape"] as? [Int] == [-1, 3, 32, 32])
                #expect(inputs[1]["datatype"] as? String == "BYTES")
                let outputs = try #require(metadata["outputs"] as? [[String: Any]])
                #expect(outputs.map { $0["name"] as? String } == ["logits", "probabilities"])
                #expect(outputs[0]["shape"] as? [Int] == [-1, 10])
                let config = try await live.request("GET", "/v2/models/\(Fixtures.modelName)/config").json()
                #expect(config["max_batch_size"] as? Int == 8)
                #expect(try await live.request("GET", "/v2/models/\(Fixtures.modelName)/versions/1").status == 200)
                #expect(try await live.request("GET", "/v2/models/\(Fixtures.modelName)/versions/2").status == 404)
                #expect(try await live.request("GET", "/v2/models/nope").status == 404)
            }
        }

        @Test func jsonFP32InferenceMatchesTheEngine() async throws {
            let live = try LiveServer()
            try await live.serving {
                let input = try npy()
                let truth = try Reference().logits(input.values, batch: input.shape[0])
                let request: [String: Any] = [
                    "id": "req-7",
                    "inputs": [["name": "input", "datatype": "FP32", "shape": input.shape, "data": input.values.map(Double.init)]],
                ]
                let response = try await live.request("POST", "/v2/models/\(Fixtures.modelName)/infer",
                                                      headers: [("Content-Type", "application/json")],
                                                      body: Array(try JSONSerialization.data(withJSONObject: request)))
                #expect(response.status == 200, "\(response.text.prefix(300))")
                let json = try response.json()
                #expect(json["id"] as? String == "req-7")
                #expect(json["model_name"] as? String == Fixtures.modelName)
                let outputs = try #require(json["outputs"] as? [[String: Any]])
                let logits = try #require((outputs.first { $0["name"] as? String == "logits" })?["data"] as? [NSNumber]).map(\.floatValue)
                #expect(logits.count == truth.count)
                #expect(zip(logits, truth).allSatisfy { abs($0 - $1) < 1e-5 })
                let probabilities = try #require(outputs.first { $0["name"] as? String == "probabilities" })
                #expect(probabilities["shape"] as? [Int] == [input.shape[0], 10])
            }
        }

        @Test func binaryTensorsInAndOut() async throws {
            let live = try LiveServer()
            try await live.serving {
                let input = try npy()
                let truth = try Reference().logits(input.values, batch: input.shape[0])
                let data = input.values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
                let header = Array(try JSONSerialization.data(withJSONObject: [
                    "inputs": [["name": "input", "datatype": "FP32", "shape": input.shape, "parameters": ["binary_data_size": data.count]]],
                    "outputs": [["name": "logits", "parameters": ["binary_data": true]]],
                ]))
                let response = try await live.request("POST", "/v2/models/\(Fixtures.modelName)/infer",
                                                      headers: [("Content-Type", "application/octet-stream"),
                                                                ("Inference-Header-Content-Length", String(header.count))],
                                                      body: header + data)
                #expect(response.status == 200)
                #expect(response.header("Content-Type") == "application/octet-stream")
                let length = try #require(response.header("Inference-Header-Content-Length").flatMap { Int($0) })
                let json = try JSONSerialization.jsonObject(with: Data(response.body[0..<length])) as! [String: Any]
                let outputs = try #require(json["outputs"] as? [[String: Any]])
                #expect(outputs.count == 1)
                #expect((outputs[0]["parameters"] as? [String: Any])?["binary_data_size"] as? Int == truth.count * 4)
                let logits = floats(response.body[length...])
                #expect(logits.count == truth.count)
                #expect(zip(logits, truth).allSatisfy { abs($0 - $1) < 1e-5 })
            }
        }

        @Test func bytesImagesGoThroughTheSamePipelineAsV1() async throws {
            let live = try LiveServer()
            try await live.serving {
                let images = [Fixtures.image("photo0.jpg"), Fixtures.image("photo3.png")]
                let data = images.flatMap { withUnsafeBytes(of: UInt32($0.count).littleEndian) { Array($0) } + $0 }
                let header = Array(try JSONSerialization.data(withJSONObject: [
                    "inputs": [["name": "image", "datatype": "BYTES", "shape": [2, 1], "parameters": ["binary_data_size": data.count]]],
                    "parameters": ["binary_data_output": false],
                ]))
                let response = try await live.request("POST", "/v2/models/\(Fixtures.modelName)/infer",
                                                      headers: [("Inference-Header-Content-Length", String(header.count))],
                                                      body: header + data)
                #expect(response.status == 200, "\(response.text)")
                let outputs = try #require(try response.json()["outputs"] as? [[String: Any]])
                let probabilities = try #require((outputs.first { $0["name"] as? String == "probabilities" })?["data"] as? [NSNumber]).map(\.floatValue)
                let reference = try Reference()
                for (i, image) in images.enumerated() {
                    let truth = try reference.probabilities(image)
                    #expect(zip(probabilities[i * 10..<(i + 1) * 10], truth).allSatisfy { abs($0 - $1) < 1e-5 })
                }
            }
        }

        @Test func malformedInferenceRequestsGetTypedErrors() async throws {
            let live = try LiveServer()
            try await live.serving {
                let path = "/v2/models/\(Fixtures.modelName)/infer"
                func post(_ object: Any, headers: [(String, String)] = []) async throws -> TestResponse {
                    try await live.request("POST", path, headers: headers, body: Array(try JSONSerialization.data(withJSONObject: object)))
                }
                let zeros = [Double](repeating: 0, count: 3 * 16 * 16)
                let wrongShape = try await post(["inputs": [["name": "input", "datatype": "FP32", "shape": [1, 3, 16, 16], "data": zeros]]])
                #expect(wrongShape.status == 400 && wrongShape.errorCode == "shape_mismatch")
                // The protocol's own error object, which tritonclient reads: {"error": "<sentence>"}.
                #expect((try wrongShape.json()["error"] as? String)?.contains("[N,3,32,32]") == true)
                let unknownInput = try await post(["inputs": [["name": "pixels", "datatype": "FP32", "shape": [1], "data": [0]]]])
                #expect(unknownInput.errorCode == "unknown_input")
                let unknownOutput = try await post(["inputs": [["name": "input", "datatype": "FP32", "shape": [1, 3, 32, 32],
                                                                "data": [Double](repeating: 0, count: 3072)]],
                                                    "outputs": [["name": "features"]]])
                #expect(unknownOutput.errorCode == "unknown_output")
                let badImage = try await post(["inputs": [["name": "image", "datatype": "BYTES", "shape": [1], "data": ["not an image"]]]])
                #expect(badImage.status == 415 && badImage.errorCode == "unsupported_format")
                let text = try await live.request("POST", path, headers: [("Content-Type", "text/csv")], body: Array("1,2".utf8))
                #expect(text.status == 415)
                let gzip = try await live.request("POST", path, headers: [("Content-Encoding", "gzip")], body: [0x1F, 0x8B, 0, 0])
                #expect(gzip.status == 415 && gzip.errorCode == "unsupported_content_encoding")
                let tooBig = try await post(["inputs": [["name": "input", "datatype": "FP32", "shape": [9, 3, 32, 32],
                                                         "data": [Double](repeating: 0, count: 9 * 3072)]]])
                #expect(tooBig.status == 400 && tooBig.errorCode == "too_many_images")
                #expect(try await live.request("POST", "/v2/models/nope/infer", body: Array("{}".utf8)).status == 404)
            }
        }
    }

    @Suite struct OpenAPI {
        /// Every documented operation answers on the live server with a status the document lists for it, and
        /// every route the service registers is documented.
        @Test func theDocumentDescribesTheLiveServer() async throws {
            let live = try LiveServer()
            try await live.serving {
                let id = try #require(try await live.request("POST", "/v1/predict", body: Fixtures.image("photo0.jpg")).json()["id"] as? String)
                let document = try await live.request("GET", "/openapi.json").json()
                let paths = try #require(document["paths"] as? [String: [String: Any]])
                #expect(Set(paths.keys) == Set(live.service.makeRouter().patterns))
                let substitutions = ["{name}": Fixtures.modelName, "{version}": "1", "{id}": id]
                for (template, operations) in paths {
                    var path = template
                    for (key, value) in substitutions { path = path.replacingOccurrences(of: key, with: value) }
                    for (method, operation) in operations {
                        let responses = try #require((operation as? [String: Any])?["responses"] as? [String: Any], "\(method) \(template)")
                        var body: [UInt8] = []
                        var headers: [(String, String)] = []
                        if template.hasSuffix("/predict") { body = Fixtures.image("photo0.jpg") }
                        if template.hasSuffix("/infer") {
                            headers = [("Content-Type", "application/json")]
                            body = Array(try JSONSerialization.data(withJSONObject: [
                                "inputs": [["name": "input", "datatype": "FP32", "shape": [1, 3, 32, 32], "data": [Double](repeating: 0.1, count: 3072)]]]))
                        }
                        let response = try await live.request(method.uppercased(), path, headers: headers, body: body)
                        #expect(response.status == 200, "\(method) \(path): \(response.status)")
                        #expect(responses[String(response.status)] != nil, "\(method) \(template) answered \(response.status), undocumented")
                        // And an unknown model or id gives a documented 404 where the path has parameters.
                        if template.contains("{name}") || template.contains("{id}") {
                            let missing = template.replacingOccurrences(of: "{name}", with: "no-such-model")
                                .replacingOccurrences(of: "{version}", with: "1").replacingOccurrences(of: "{id}", with: "no-such-id")
                            let notFound = try await live.request(method.uppercased(), missing, headers: headers, body: body)
                            #expect(notFound.status == 404, "\(method) \(missing)")
                            #expect(responses["404"] != nil, "\(method) \(template) does not document 404")
                        }
                    }
                }
            }
        }
    }
}
