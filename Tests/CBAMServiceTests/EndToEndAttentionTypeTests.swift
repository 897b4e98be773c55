import CBAMEngine
import Foundation
import Testing
@testable import CBAMService

extension EndToEnd {
    /// Issue 18: SE and ECA models (timm's layout, from the engine's fixtures) through the service: channel maps only,
    /// and the missing spatial map said as null in /v1/models and in every attention JSON, and as an error for PNG.
    @Suite struct AttentionTypes {
        static func engineFixture(_ name: String) -> URL {
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("CBAMEngineTests/Fixtures/\(name)")
        }

        @Test(arguments: [("timm_seresnet", "se"), ("timm_ecaresnet_deep_avgdown", "eca")])
        func channelOnlyAttentionIsServedWithoutASpatialMap(_ fixture: String, _ type: String) async throws {
            let model = try CBAMModel.load(directory: Self.engineFixture(fixture))
            let live = try LiveServer(model: model)
            try await live.serving {
                let description = try await live.request("GET", "/v1/models/\(fixture)").json()
                let architecture = try #require(description["architecture"] as? [String: Any])
                let attention = try #require(architecture["attention"] as? [String: Any])
                #expect(attention["type"] as? String == type)
                #expect(attention["spatial_map"] as? Bool == false)
                #expect((architecture["checkpoint_layout"] as? String)?.hasPrefix("timm") == true)
                let layers = try #require(description["cbam_layers"] as? [[String: Any]])
                #expect(layers.count == 4)
                #expect(layers.allSatisfy { $0["type"] as? String == type && $0["spatial_shape"] is NSNull })
                #expect(layers.allSatisfy { ($0["hidden"] is NSNull) == (type == "eca") })
                #expect(layers.allSatisfy { ($0["kernel_size"] is NSNull) == (type == "se") })
                #expect((attention["reduction"] is NSNull) == (type == "eca") && attention["kernel_size"] is NSNull)

                let response = try await live.request("POST", "/v1/predict?attention=all", body: Fixtures.image("photo0.jpg"))
                #expect(response.status == 200, "\(response.text)")
                let json = try response.json()
                let inline = try #require(json["attention"] as? [[String: Any]])
                #expect(inline.map { ($0["channel"] as? [Any])?.count } == layers.map { $0["channels"] as? Int })
                #expect(inline.allSatisfy { $0["spatial"] is NSNull })
                let id = try #require(json["id"] as? String)

                let spatialOnly = try await live.request("GET", "/v1/attention/\(id)?kind=spatial").json()
                let stored = try #require((spatialOnly["images"] as? [[String: Any]])?.first?["attention"] as? [[String: Any]])
                #expect(stored.count == 4 && stored.allSatisfy { $0["spatial"] is NSNull && $0["channel"] == nil })
                let channelOnly = try await live.request("GET", "/v1/attention/\(id)?kind=channel").json()
                let channels = try #require((channelOnly["images"] as? [[String: Any]])?.first?["attention"] as? [[String: Any]])
                #expect(channels.allSatisfy { $0["channel"] != nil && $0.keys.contains("spatial") == false })

                let png = try await live.request("GET", "/v1/attention/\(id)?layer=layer2.0&format=png")
                #expect(png.status == 404)
                #expect(png.errorCode == "no_spatial_map")
                #expect(png.text.contains("layer2.0"))
            }
        }
    }
}
