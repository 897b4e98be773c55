import Foundation
import Testing
@testable import CBAMService

/// The document says what the server does: security only with an API key, no empty image bodies, and an
/// inference input carries either `data` or a `binary_data_size`. Tests/python/test_openapi_schemathesis.py
/// checks the same against the live server.
@Suite struct OpenAPIDocumentTests {
    func document(apiKey: Bool) throws -> [String: Any] {
        let bytes = OpenAPIDocument.json(modelName: "cbam-test", apiKeyRequired: apiKey)
        return try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
    }

    func responseCodes(_ document: [String: Any]) throws -> [String: Set<String>] {
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var codes: [String: Set<String>] = [:]
        for (path, operations) in paths {
            for (method, operation) in operations {
                let responses = try #require((operation as? [String: Any])?["responses"] as? [String: Any])
                codes["\(method) \(path)"] = Set(responses.keys)
            }
        }
        return codes
    }

    @Test func securityIsDeclaredOnlyWithAnAPIKey() throws {
        let open = try document(apiKey: false), guarded = try document(apiKey: true)
        #expect(open["security"] == nil)
        #expect((open["components"] as? [String: Any])?["securitySchemes"] == nil)
        #expect(try responseCodes(open).values.allSatisfy { !$0.contains("401") })
        #expect(!String(decoding: OpenAPIDocument.json(modelName: "m", apiKeyRequired: false), as: UTF8.self)
            .contains("Unauthorized\""))

        #expect((guarded["security"] as? [[String: Any]])?.first?["bearer"] != nil)
        let guardedCodes = try responseCodes(guarded)
        let probes: Set = ["get /healthz", "get /readyz", "get /v2/health/live", "get /v2/health/ready"]
        for (operation, codes) in guardedCodes {
            #expect(codes.contains("401") != probes.contains(operation), "\(operation)")
        }
        // Apart from security the two documents are the same.
        #expect(Set(guardedCodes.keys) == Set(try responseCodes(open).keys))
    }

    @Test func rawImageBodiesAreNeverEmpty() throws {
        let components = try #require(try document(apiKey: false)["components"] as? [String: Any])
        let bodies = try #require(components["requestBodies"] as? [String: [String: Any]])
        let content = try #require(bodies["Images"]?["content"] as? [String: [String: Any]])
        for type in ["image/jpeg", "image/png", "application/octet-stream"] {
            #expect((content[type]?["schema"] as? [String: Any])?["minLength"] as? Int == 1, "\(type)")
        }
        #expect((content["multipart/form-data"]?["schema"] as? [String: Any])?["minProperties"] as? Int == 1)
    }

    @Test func anInferenceInputHasDataOrABinaryDataSize() throws {
        let components = try #require(try document(apiKey: true)["components"] as? [String: Any])
        let schemas = try #require(components["schemas"] as? [String: [String: Any]])
        let inputs = try #require((schemas["OIPInferenceRequest"]?["properties"] as? [String: Any])?["inputs"] as? [String: Any])
        let input = try #require(inputs["items"] as? [String: Any])
        let branches = try #require(input["oneOf"] as? [[String: Any]])
        #expect(branches.count == 2)
        #expect(branches.map { $0["required"] as? [String] } == [["data"], ["parameters"]])
        let binary = (branches[1]["properties"] as? [String: Any])?["parameters"] as? [String: Any]
        #expect(binary?["required"] as? [String] == ["binary_data_size"])
        // JSON data excludes binary_data_size: the decoder reads binary data whenever that parameter is present.
        let json = ((branches[0]["properties"] as? [String: Any])?["parameters"] as? [String: Any])?["properties"] as? [String: Any]
        #expect(json?["binary_data_size"] as? Bool == false)
    }

    @Test func theModelNameIsTheOnlyOneAccepted() throws {
        let components = try #require(try document(apiKey: false)["components"] as? [String: Any])
        let name = try #require((components["parameters"] as? [String: [String: Any]])?["ModelName"])
        #expect((name["schema"] as? [String: Any])?["enum"] as? [String] == ["cbam-test"])
    }
}
