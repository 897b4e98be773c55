import CBAMEngine
import Foundation
import Testing
@testable import CBAMService

/// Every end-to-end suite runs one test at a time: they share two CPU cores, and the batching tests need them.
@Suite(.serialized) struct EndToEnd {}

extension EndToEnd {
    @Suite struct Routes {
        @Test func healthModelsMetricsAndOpenAPIAnswer() async throws {
            let live = try LiveServer()
            try await live.serving {
                #expect(try await live.request("GET", "/healthz").json()["status"] as? String == "ok")
                let ready = try await live.request("GET", "/readyz")
                #expect(ready.status == 200)
                #expect(try ready.json()["model"] as? String == Fixtures.modelName)

                let models = try await live.request("GET", "/v1/models").json()
                let list = try #require(models["models"] as? [[String: Any]])
                #expect(list.count == 1)
                let model = try await live.request("GET", "/v1/models/\(Fixtures.modelName)").json()
                #expect(model["name"] as? String == Fixtures.modelName)
                #expect(model["num_classes"] as? Int == 10)
                #expect((model["labels"] as? [String])?.first == "airplane")
                let layers = try #require(model["cbam_layers"] as? [[String: Any]])
                // CBAM only in stages 2 and 3 of [2,2,2] blocks, maps at 16x16 and 8x8.
                #expect(layers.map { $0["layer"] as? String } == ["layer2.0", "layer2.1", "layer3.0", "layer3.1"])
                #expect(layers.first?["spatial_shape"] as? [Int] == [16, 16])
                #expect(layers.last?["channel_shape"] as? [Int] == [64])
                #expect(model["parameters"] as? Int == 178_106)
                #expect((model["input"] as? [String: Any])?["size"] as? Int == 32)

                let missing = try await live.request("GET", "/v1/models/resnet-9000")
                #expect(missing.status == 404)
                #expect(missing.errorCode == "model_not_found")

                let metrics = try await live.request("GET", "/metrics")
                #expect(metrics.status == 200)
                #expect(metrics.header("Content-Type")?.hasPrefix("text/plain") == true)
                #expect(metrics.text.contains("cbam_http_requests_total"))
                #expect(metrics.text.contains(#"cbam_http_requests_total{route="/v1/models/{name}",method="GET",status="404"} 1"#))

                let openapi = try await live.request("GET", "/openapi.json").json()
                #expect(openapi["openapi"] as? String == "3.1.0")
            }
        }

        @Test func predictReturnsTheEnginesTopKForARawImage() async throws {
            let live = try LiveServer()
            try await live.serving {
                let reference = try Reference()
                for (name, type) in [("photo0.jpg", "image/jpeg"), ("photo3.png", "image/png"), ("photo1.jpg", "application/octet-stream")] {
                    let image = Fixtures.image(name)
                    let response = try await live.request("POST", "/v1/predict?top_k=3", headers: [("Content-Type", type)], body: image)
                    #expect(response.status == 200, "\(name): \(response.text)")
                    let json = try response.json()
                    #expect(json["model"] as? String == Fixtures.modelName)
                    #expect((json["id"] as? String)?.isEmpty == false)
                    #expect(json["attention"] == nil)
                    let predictions = try #require(json["predictions"] as? [[String: Any]])
                    #expect(predictions.count == 3)
                    let expected = reference.model.labels
                    let probabilities = try reference.probabilities(image)
                    let best = topK(probabilities, k: 3)
                    for (prediction, truth) in zip(predictions, best) {
                        #expect(prediction["index"] as? Int == truth.index)
                        #expect(prediction["label"] as? String == expected[truth.index])
                        let p = try #require((prediction["probability"] as? NSNumber)?.floatValue)
                        #expect(abs(p - truth.score) < 1e-5)
                    }
                    let timing = try #require(json["timing"] as? [String: Any])
                    for key in ["queue_ms", "inference_ms", "decode_ms", "preprocess_ms", "total_ms"] {
                        #expect((timing[key] as? NSNumber).map { $0.doubleValue >= 0 } == true, "timing.\(key)")
                    }
                    #expect(timing["batch_size"] as? Int == 1)
                }
                let named = try await live.request("POST", "/v1/models/\(Fixtures.modelName)/predict", body: Fixtures.image("photo2.jpg"))
                #expect(named.status == 200)
                let wrong = try await live.request("POST", "/v1/models/other/predict", body: Fixtures.image("photo2.jpg"))
                #expect(wrong.status == 404)
            }
        }

        @Test func multipartGivesOneResultPerFileInOrder() async throws {
            let live = try LiveServer()
            try await live.serving {
                let reference = try Reference()
                let names = ["photo0.jpg", "photo3.png", "photo2.jpg"]
                let (body, contentType) = multipartBody(names.map { ($0, $0.hasSuffix("png") ? "image/png" : "image/jpeg", Fixtures.image($0)) })
                let response = try await live.request("POST", "/v1/predict?top_k=1&attention=channel",
                                                      headers: [("Content-Type", contentType)], body: body)
                #expect(response.status == 200, "\(response.text)")
                let json = try response.json()
                let results = try #require(json["results"] as? [[String: Any]])
                #expect(results.count == 3)
                for (i, result) in results.enumerated() {
                    #expect(result["filename"] as? String == names[i])
                    let top = try #require((result["predictions"] as? [[String: Any]])?.first)
                    let truth = topK(try reference.probabilities(Fixtures.image(names[i])), k: 1)[0]
                    #expect(top["index"] as? Int == truth.index)
                    let attention = try #require(result["attention"] as? [[String: Any]])
                    #expect(attention.count == 4)
                    #expect(attention[0]["channel"] != nil && attention[0]["spatial"] == nil)
                }
                #expect((json["timing"] as? [String: Any])?["batch_size"] as? Int == 3)

                // A text field beside the file is not an image.
                var withField = Array("--b\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n".utf8)
                withField += Array("--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"p.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n".utf8)
                withField += Fixtures.image("photo0.jpg") + Array("\r\n--b--\r\n".utf8)
                let mixed = try await live.request("POST", "/v1/predict", headers: [("Content-Type", "multipart/form-data; boundary=b")], body: withField)
                #expect(mixed.status == 200, "\(mixed.text)")
                #expect((try mixed.json()["results"] as? [[String: Any]])?.map { $0["filename"] as? String } == ["p.jpg"])
                let onlyText = Array("--b\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n--b--\r\n".utf8)
                let none = try await live.request("POST", "/v1/predict", headers: [("Content-Type", "multipart/form-data; boundary=b")], body: onlyText)
                #expect(none.status == 400 && none.errorCode == "no_images")

                let tooMany = multipartBody((0..<9).map { ("f\($0).jpg", "image/jpeg", Fixtures.image("photo0.jpg")) })
                let refused = try await live.request("POST", "/v1/predict", headers: [("Content-Type", tooMany.contentType)], body: tooMany.body)
                #expect(refused.status == 400)
                #expect(refused.errorCode == "too_many_images")
            }
        }

        @Test func attentionMapsAreKeptAndServedAsJSONAndHeatMaps() async throws {
            let live = try LiveServer()
            try await live.serving {
                let image = Fixtures.image("photo1.jpg")
                let response = try await live.request("POST", "/v1/predict?attention=all", body: image)
                let json = try response.json()
                let id = try #require(json["id"] as? String)
                #expect(response.header("Location") == "/v1/attention/\(id)")
                let inline = try #require(json["attention"] as? [[String: Any]])
                #expect(inline.count == 4)
                let spatial = try #require(inline[2]["spatial"] as? [String: Any])
                #expect(spatial["height"] as? Int == 8 && spatial["width"] as? Int == 8)
                #expect((spatial["data"] as? [Any])?.count == 64)
                #expect((inline[2]["channel"] as? [Any])?.count == 64)

                // The engine's own maps for the same image.
                let reference = try Reference()
                let truth = try reference.model.forward(try reference.tensor(image), batch: 1, height: 32, width: 32, attention: true)
                let layer30 = truth.attention[0][2]
                let served = (spatial["data"] as! [NSNumber]).map(\.floatValue)
                #expect(zip(served, layer30.spatial).allSatisfy { abs($0 - $1) < 1e-6 })

                let stored = try await live.request("GET", "/v1/attention/\(id)?layer=layer3.0&kind=spatial").json()
                let images = try #require(stored["images"] as? [[String: Any]])
                let layers = try #require(images.first?["attention"] as? [[String: Any]])
                #expect(layers.count == 1)
                #expect(layers[0]["layer"] as? String == "layer3.0")
                #expect(layers[0]["channel"] == nil)
                #expect(((layers[0]["spatial"] as? [String: Any])?["data"] as? [NSNumber])?.map(\.floatValue) == served)
                let all = try await live.request("GET", "/v1/attention/\(id)").json()
                #expect(((all["images"] as? [[String: Any]])?.first?["attention"] as? [Any])?.count == 4)

                let png = try await live.request("GET", "/v1/attention/\(id)?layer=layer3.0&format=png")
                #expect(png.status == 200)
                #expect(png.header("Content-Type") == "image/png")
                #expect(Array(png.body.prefix(8)) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
                // IHDR width and height: the 32x32 input crop.
                #expect(Array(png.body[16..<24]) == [0, 0, 0, 32, 0, 0, 0, 32])
                let overlay = try await live.request("GET", "/v1/attention/\(id)?layer=layer3.0&format=png&overlay=true")
                #expect(overlay.status == 200 && overlay.body != png.body)
                let deepest = try await live.request("GET", "/v1/attention/\(id)?format=png&colormap=inferno")
                #expect(deepest.status == 200)

                #expect(try await live.request("GET", "/v1/attention/\(id)?layer=layer9.9").errorCode == "unknown_layer")
                #expect(try await live.request("GET", "/v1/attention/\(id)?format=gif").status == 400)
                let unknown = try await live.request("GET", "/v1/attention/0000")
                #expect(unknown.status == 404)
                #expect(unknown.errorCode == "attention_not_found")
            }
        }

        @Test func withTheStoreOffMapsComeOnlyWhenAskedAndNothingIsKept() async throws {
            let live = try LiveServer { $0.attentionStoreEntries = 0 }
            try await live.serving {
                let image = Fixtures.image("photo1.jpg")
                let plain = try await live.request("POST", "/v1/predict", body: image)
                #expect(plain.status == 200)
                #expect(plain.header("Location") == nil)
                let id = try #require(try plain.json()["id"] as? String)
                #expect(try await live.request("GET", "/v1/attention/\(id)").status == 404)

                let asked = try await live.request("POST", "/v1/predict?attention=spatial", body: image)
                let layers = try #require(try asked.json()["attention"] as? [[String: Any]])
                #expect(layers.count == 4)
                #expect(layers.allSatisfy { $0["spatial"] != nil && $0["channel"] == nil })
                #expect(asked.header("Location") == nil)
                // Same classes either way: the maps are a by-product, not a different pass.
                #expect(try plain.json()["predictions"] as? [[String: Any]] != nil)
                let a = try #require(try plain.json()["predictions"] as? [[String: Any]])
                let b = try #require(try asked.json()["predictions"] as? [[String: Any]])
                #expect(a.map { $0["index"] as? Int } == b.map { $0["index"] as? Int })
            }
        }

        @Test func attentionExpiresAfterItsTTL() async throws {
            let live = try LiveServer { $0.attentionTTL = .milliseconds(200) }
            try await live.serving {
                let id = try #require(try await live.request("POST", "/v1/predict", body: Fixtures.image("photo0.jpg")).json()["id"] as? String)
                #expect(try await live.request("GET", "/v1/attention/\(id)").status == 200)
                try await Task.sleep(for: .milliseconds(300))
                #expect(try await live.request("GET", "/v1/attention/\(id)").status == 404)
            }
        }

        @Test func badUploadsGetTheJSONErrorShapeAndTheServerGoesOn() async throws {
            let live = try LiveServer(http: { $0.limits.maxBodyBytes = 64 * 1024 })
            try await live.serving {
                let cases: [(String, [(String, String)], [UInt8], Int, String)] = [
                    ("GIF", [("Content-Type", "image/gif")], Fixtures.image("tiny.gif"), 415, "unsupported_media_type"),
                    ("GIF as octet-stream", [("Content-Type", "application/octet-stream")], Fixtures.image("tiny.gif"), 415, "unsupported_format"),
                    ("text", [("Content-Type", "text/plain")], Array("hello".utf8), 415, "unsupported_media_type"),
                    ("truncated JPEG", [], Fixtures.image("truncated.jpg"), 400, ""),
                    ("empty body", [("Content-Type", "image/jpeg")], [], 400, "empty_body"),
                    ("pixel bomb", [("Content-Type", "image/png")], Fixtures.image("huge.png"), 413, "image_too_large"),
                    ("oversized body", [("Content-Type", "image/jpeg")], [UInt8](repeating: 0xFF, count: 200 * 1024), 413, ""),
                    ("bad top_k", [], Fixtures.image("photo0.jpg"), 400, "invalid_parameter"),
                    ("broken multipart", [("Content-Type", "multipart/form-data; boundary=zzz")], Array("--zzz\r\nnonsense".utf8), 400, ""),
                ]
                for (name, headers, body, status, code) in cases {
                    let target = name == "bad top_k" ? "/v1/predict?top_k=zero" : "/v1/predict"
                    let response = try await live.request("POST", target, headers: headers, body: body)
                    #expect(response.status == status, "\(name): \(response.status) \(response.text)")
                    let error = try response.json()["error"] as? [String: Any]
                    #expect(error?["code"] is String && error?["message"] is String, "\(name): \(response.text)")
                    if !code.isEmpty { #expect(response.errorCode == code, "\(name)") }
                    let next = try await live.request("POST", "/v1/predict", body: Fixtures.image("photo0.jpg"))
                    #expect(next.status == 200, "after \(name)")
                }
                let metrics = try await live.metrics()
                #expect(metricValue(metrics, #"cbam_errors_total{code="unsupported_media_type"}"#) == 2)
                #expect(metricValue(metrics, #"cbam_errors_total{code="image_too_large"}"#) == 1)
                #expect((metricValue(metrics, #"cbam_images_decoded_total{format="jpeg"}"#) ?? 0) >= 9)
            }
        }

        @Test func anAPIKeyGuardsEveryRouteButTheHealthProbes() async throws {
            let live = try LiveServer { $0.apiKey = "open-sesame" }
            try await live.serving {
                for target in ["/v1/models", "/metrics", "/openapi.json", "/v2", "/v2/models/\(Fixtures.modelName)"] {
                    let denied = try await live.request("GET", target)
                    #expect(denied.status == 401, "\(target)")
                    #expect(denied.errorCode == "unauthorized")
                    #expect(denied.header("WWW-Authenticate") == "Bearer")
                    #expect(try await live.request("GET", target, headers: [("Authorization", "Bearer open-sesam")]).status == 401)
                    #expect(try await live.request("GET", target, headers: [("Authorization", "Bearer open-sesame")]).status == 200)
                }
                let post = try await live.request("POST", "/v1/predict", body: Fixtures.image("photo0.jpg"))
                #expect(post.status == 401)
                let allowed = try await live.request("POST", "/v1/predict", headers: [("Authorization", "Bearer open-sesame")],
                                                     body: Fixtures.image("photo0.jpg"))
                #expect(allowed.status == 200)
                for probe in ["/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"] {
                    #expect(try await live.request("GET", probe).status == 200, "\(probe)")
                }
            }
        }
    }
}
