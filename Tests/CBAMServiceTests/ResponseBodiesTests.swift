import CBAMEngine
import Foundation
import HTTPServer
import Testing
@testable import CBAMService

/// The typed response bodies write the fields, order and nulls the API has always had.
@Suite struct ResponseBodiesTests {
    let map = AttentionMap(layer: "layer1.0", channel: [0.25, 0.5], spatialHeight: 1, spatialWidth: 2, spatial: [0.125, .nan])

    @Test func aMultipartPredictionKeepsItsFieldOrderAndNullFilename() throws {
        let result = PredictionResponse.ImageResult(predictions: [Prediction(index: 3, label: "cat", probability: 0.75)],
                                                    attention: [AttentionLayer(map, kind: .spatial)])
        let response = PredictionResponse(
            id: "i", model: "m",
            body: .files([.init(index: 0, filename: nil, result: result), .init(index: 1, filename: "b.png", result: result)]),
            timing: .init(decodeMs: ms(.microseconds(1500)), preprocessMs: 0, queueMs: 2.25, inferenceMs: 3,
                          batchSize: 2, batchRequests: 1, totalMs: 7.125))
        let entry = #"{"predictions":[{"index":3,"label":"cat","probability":0.75}],"attention":[{"layer":"layer1.0","spatial":{"height":1,"width":2,"data":[0.125,null]}}]}"#
        let one = #"{"index":0,"filename":null,"# + entry.dropFirst()
        let two = #"{"index":1,"filename":"b.png","# + entry.dropFirst()
        #expect(String(decoding: try JSONBodyEncoder.encode(response), as: UTF8.self)
                == #"{"id":"i","model":"m","results":["# + one + "," + two + #"],"timing":{"decode_ms":1.5,"preprocess_ms":0.0,"queue_ms":2.25,"inference_ms":3.0,"batch_size":2,"batch_requests":1,"total_ms":7.125}}"#)
    }

    @Test func aSingleImagePredictionIsInline() throws {
        let response = PredictionResponse(
            id: "i", model: "m",
            body: .single(.init(predictions: [Prediction(index: 0, label: "a", probability: 1)], attention: nil)),
            timing: .init(decodeMs: 0, preprocessMs: 0, queueMs: 0, inferenceMs: 0, batchSize: 1, batchRequests: 1, totalMs: 0))
        let text = String(decoding: try JSONBodyEncoder.encode(response), as: UTF8.self)
        #expect(text.hasPrefix(#"{"id":"i","model":"m","predictions":[{"index":0,"label":"a","probability":1.0}],"timing":{"#))
    }

    @Test func attentionLayersReadBackAsTheCLIWritesThem() throws {
        let finite = AttentionMap(layer: "layer2.1", channel: [0.1, 0.2], spatialHeight: 2, spatialWidth: 1, spatial: [0.3, 0.4])
        let layer = AttentionLayer(finite)
        let ours = try JSONDecoder().decode(AttentionLayer.self, from: Data(try JSONBodyEncoder.encode(layer)))
        let theirs = try JSONDecoder().decode(AttentionLayer.self, from: JSONEncoder().encode(layer))
        #expect(ours == layer)
        #expect(theirs == layer)
        #expect(AttentionLayer(finite, kind: .channel).spatial == nil)
        #expect(AttentionLayer(finite, kind: .spatial).channel == nil)
    }

    @Test func msRoundsToTheMicrosecond() {
        #expect(ms(.nanoseconds(2_100_400)) == 2.1)
        #expect(ms(.nanoseconds(2_100_600)) == 2.101)
    }
}
