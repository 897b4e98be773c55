import ArgumentParser
import CBAMEngine
import Foundation
import HTTPServer

/// `cbam-serve inspect`: what a model directory holds — architecture, size, cost, and its CBAM layers.
struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's architecture, parameter count, multiply-adds and CBAM layers.")

    @Option(help: "Model directory (config.json, model.safetensors, optional labels.txt).")
    var model: String = ModelDirectory.defaultPath

    @Flag(help: "Print the summary as JSON.")
    var json = false

    func run() async throws {
        let loaded: CBAMModel
        do { loaded = try CBAMModel.load(directory: URL(fileURLWithPath: model)) } catch {
            FileHandle.standardError.write(Data("error: \(error.code): \(error.message)\n".utf8))
            throw ExitCode(1)
        }
        let summary = loaded.summary()
        if json {
            print(String(decoding: try JSONBodyEncoder.encode(summary), as: UTF8.self))
        } else {
            print(Self.describe(summary, config: loaded.config))
        }
    }

    static func describe(_ s: ModelSummary, config: ModelConfig) -> String {
        var lines = ["\(s.name) (\(config.format))"]
        let shortcut = s.shortcut == "avgpool" ? ", average-pool shortcut" : ""
        lines.append("  architecture:  \(s.block) blocks \(s.layers), widths \(s.widths), \(s.stem) stem\(shortcut), \(s.numClasses) classes")
        if let a = config.attention, let type = a.kind {
            let detail = switch type {
            case .cbam: "channel + spatial maps, \(a.kernelSize)x\(a.kernelSize) spatial kernel"
            case .se: "channel map only (squeeze-and-excitation), no spatial map"
            case .eca: "channel map only (1-D convolution across channels), no spatial map"
            }
            lines.append("  attention:     \(type.displayName): \(detail), stages \(a.stages)")
        } else {
            lines.append("  attention:     none")
        }
        lines.append("  checkpoint:    \(s.checkpointLayout) layout")
        lines.append("  parameters:    \(s.parameters) (\(String(format: "%.2f", Double(s.parameters) / 1e6)) M)")
        lines.append("  multiply-adds: \(s.multiplyAdds) (\(String(format: "%.3f", Double(s.multiplyAdds) / 1e9)) G) per image at 3x\(s.inputHeight)x\(s.inputWidth)")
        let i = config.input
        lines.append("  input:         size \(i.size), resize \(i.resize), mean \(i.mean), std \(i.std)")
        lines.append("  attention layers: \(s.cbamLayers.count)")
        for l in s.cbamLayers {
            let name = l.layer.padding(toLength: 10, withPad: " ", startingAt: 0)
            let module = switch (l.hidden, l.kernelSize) {
            case let (hidden?, _): "MLP \(l.channels)-\(hidden)-\(l.channels)"
            case let (nil, k?): "1-D kernel \(k)"
            default: ""
            }
            let spatial = l.spatialHeight.flatMap { h in l.spatialWidth.map { "spatial [\(h)x\($0)]" } } ?? "no spatial map"
            lines.append("    \(name) \(l.type.uppercased()) channel [\(l.channels)] (\(module))  \(spatial)")
        }
        return lines.joined(separator: "\n")
    }
}
