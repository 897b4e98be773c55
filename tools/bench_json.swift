// Times JSONBodyEncoder, the string concatenation it replaced (issue 17) and Foundation's JSONEncoder on a
// /v1/predict?attention=all body of the default model's shape. Built with HTTPCore's sources by tools/bench-json.sh.
import Foundation

// A /v1/predict?attention=all body of the default model's shape: 5 predictions and 8 CBAM layers.
struct P: Encodable { let index: Int; let label: String; let probability: Float }
struct S: Encodable { let height: Int; let width: Int; let data: [Float] }
struct L: Encodable { let layer: String; let channel: [Float]?; let spatial: S? }
struct R: Encodable { let id: String; let model: String; let predictions: [P]; let attention: [L] }


func floats(_ n: Int) -> [Float] { (0..<n).map { _ in Float.random(in: 0..<1) } }
let shapes = [(48, 32), (48, 32), (96, 16), (96, 16), (192, 8), (192, 8), (384, 4), (384, 4)]
let layers = shapes.enumerated().map { i, s in L(layer: "layer\(i / 2 + 1).\(i % 2)", channel: floats(s.0), spatial: S(height: s.1, width: s.1, data: floats(s.1 * s.1))) }
let value = R(id: UUID().uuidString, model: "cbam-resnet10-cifar10",
              predictions: (0..<5).map { P(index: $0, label: "cat", probability: Float.random(in: 0..<1)) }, attention: layers)

// The old way: strings concatenated (JSONText.string / JSONText.numbers as they were).
func str(_ s: String) -> String { "\"" + s + "\"" }
func nums(_ xs: [Float]) -> String { "[" + xs.map { $0.isFinite ? $0.description : "null" }.joined(separator: ",") + "]" }
func old(_ r: R) -> [UInt8] {
    let preds = r.predictions.map { "{\"index\":\($0.index),\"label\":\(str($0.label)),\"probability\":\($0.probability.description)}" }.joined(separator: ",")
    let att = "[" + r.attention.map { l in
        "{\"layer\":" + str(l.layer) + ",\"channel\":" + nums(l.channel!) + ",\"spatial\":{\"height\":\(l.spatial!.height),\"width\":\(l.spatial!.width),\"data\":" + nums(l.spatial!.data) + "}}"
    }.joined(separator: ",") + "]"
    return Array(("{\"id\":\(str(r.id)),\"model\":\(str(r.model)),\"predictions\":[\(preds)],\"attention\":" + att + "}").utf8)
}

func time(_ name: String, _ body: () throws -> [UInt8]) rethrows {
    var best = Double.infinity, size = 0
    for _ in 0..<7 {
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<50 { size = try body().count }
        best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 50 / 1e6)
    }
    print(String(format: "%-28@ %.3f ms per body (%d bytes)", name as NSString, best, size))
}
try time("JSONBodyEncoder") { try JSONBodyEncoder.encode(value) }
time("string concatenation (old)") { old(value) }
try time("Foundation JSONEncoder") { Array(try JSONEncoder().encode(value)) }
