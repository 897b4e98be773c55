import Foundation
import Testing
@testable import CBAMEngine

/// Missing, unexpected and mis-shaped tensors are errors that name the tensor and both shapes.
@Suite struct CheckpointErrorTests {
    typealias Tensor = (name: String, shape: [Int], values: [Float])

    /// The tensors of a fixture's checkpoint, in name order, `num_batches_tracked` (int64) left out.
    func tensors(_ fixture: String) throws -> [Tensor] {
        let file = try SafeTensors(contentsOf: ParityFixture.directory(fixture).appendingPathComponent("model.safetensors"))
        return try file.entries.values.filter { $0.dtype == "F32" }.sorted { $0.name < $1.name }.map {
            ($0.name, $0.shape, try file.floats($0.name))
        }
    }

    func config(_ fixture: String) throws -> ModelConfig {
        try ModelConfig.load(from: ParityFixture.directory(fixture).appendingPathComponent("config.json"))
    }

    func load(_ fixture: String, _ tensors: [Tensor], config: ModelConfig? = nil) throws -> CBAMModel {
        try CBAMModel(config: config ?? self.config(fixture), weights: SafeTensors(data: SafeTensors.encode(tensors)))
    }

    func expectError(_ code: String, containing parts: [String], _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("expected a \(code) error")
        } catch let error as ModelError {
            #expect(error.code == code, "\(error.code): \(error.message)")
            for part in parts { #expect(error.message.contains(part), "message \"\(error.message)\" lacks \"\(part)\"") }
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test func loadsWithoutNumBatchesTracked() throws {
        _ = try load("basic_cifar_selective", tensors("basic_cifar_selective"))
    }

    @Test func missingTensorIsNamedWithItsExpectedShape() throws {
        let all = try tensors("basic_cifar_selective")
        expectError("missing_tensor", containing: ["layer3.1.conv2.weight", "[64,64,3,3]"]) {
            _ = try load("basic_cifar_selective", all.filter { $0.name != "layer3.1.conv2.weight" })
        }
        expectError("missing_tensor", containing: ["layer2.0.cbam.spatial_attention.conv.weight", "[1,2,3,3]"]) {
            _ = try load("basic_cifar_selective", all.filter { $0.name != "layer2.0.cbam.spatial_attention.conv.weight" })
        }
        expectError("missing_tensor", containing: ["layer2.1.bn1.running_var", "[32]"]) {
            _ = try load("basic_cifar_selective", all.filter { $0.name != "layer2.1.bn1.running_var" })
        }
    }

    @Test func unexpectedTensorIsNamedWithItsShape() throws {
        let all = try tensors("basic_cifar_selective")
        expectError("unexpected_tensor", containing: ["layer1.0.extra.weight", "[5,2]"]) {
            _ = try load("basic_cifar_selective", all + [("layer1.0.extra.weight", [5, 2], [Float](repeating: 0, count: 10))])
        }
        // CBAM tensors in a stage the config says has none.
        var noCBAMInStage2 = try config("basic_cifar_selective")
        noCBAMInStage2.attention!.stages = [false, false, true]
        expectError("unexpected_tensor", containing: ["layer2.0.cbam."]) {
            _ = try load("basic_cifar_selective", all, config: noCBAMInStage2)
        }
    }

    @Test func misShapedTensorNamesBothShapes() throws {
        var all = try tensors("basic_cifar_selective")
        let i = all.firstIndex { $0.name == "layer3.1.conv2.weight" }!
        all[i] = (all[i].name, [64, 32, 3, 6], all[i].values)
        expectError("shape_mismatch", containing: ["layer3.1.conv2.weight", "[64,32,3,6]", "[64,64,3,3]"]) {
            _ = try load("basic_cifar_selective", all)
        }
        // A config whose widths disagree with the checkpoint.
        var wider = try config("basic_cifar_selective")
        wider.widths = [16, 32, 128]
        expectError("shape_mismatch", containing: ["layer3.0.conv1.weight", "[64,32,3,3]", "[128,32,3,3]"]) {
            _ = try load("basic_cifar_selective", try tensors("basic_cifar_selective"), config: wider)
        }
        // A spatial kernel size that disagrees with the config.
        var kernel7 = try config("basic_cifar_selective")
        kernel7.attention!.kernelSize = 7
        expectError("shape_mismatch", containing: ["layer2.0.cbam.spatial_attention.conv.weight", "[1,2,3,3]", "[1,2,7,7]"]) {
            _ = try load("basic_cifar_selective", try tensors("basic_cifar_selective"), config: kernel7)
        }
    }

    @Test func authorsLayoutNeedsItsSpatialBatchNorm() throws {
        let all = try tensors("authors_module_prefix")
        #expect(all.allSatisfy { $0.name.hasPrefix("module.") })
        expectError("missing_tensor", containing: ["layer1.0.cbam.SpatialGate.spatial.bn.running_mean", "[1]"]) {
            _ = try load("authors_module_prefix", all.filter { $0.name != "module.layer1.0.cbam.SpatialGate.spatial.bn.running_mean" })
        }
    }

    @Test func linearAndConvMLPFormsAreBothDetected() throws {
        // Reshape the Linear MLP weights of a checkpoint to 1x1 convs: still loads, same logits.
        let fixture = try ParityFixture("basic_cifar_selective")
        let linear = try tensors("basic_cifar_selective")
        let conv = linear.map { t -> Tensor in
            t.name.contains(".channel_attention.fc.") && t.name.hasSuffix(".weight") ? (t.name.replacingOccurrences(of: ".fc.", with: ".mlp."), t.shape + [1, 1], t.values)
                : (t.name.replacingOccurrences(of: ".channel_attention.fc.", with: ".channel_attention.mlp."), t.shape, t.values)
        }
        let a = try load("basic_cifar_selective", linear), b = try load("basic_cifar_selective", conv)
        #expect(b.layout == .canonical(mlp: .conv, name: "mlp", bias: true))
        let x = fixture.input.values
        let la = try a.forward(x, batch: fixture.batch, height: 32, width: 32, attention: false).logits
        let lb = try b.forward(x, batch: fixture.batch, height: 32, width: 32, attention: false).logits
        // Two models, each with its own execution plan chosen by timing: a layer may run as F(4x4) in one and F(2x2)
        // in the other, which moves logits in the last digits; a misread MLP would move them by whole units.
        #expect(maxAbsDifference(la, lb) <= 1e-4)
        // Mixing the forms is a shape error on the block that differs.
        var mixed = linear
        let j = mixed.firstIndex { $0.name == "layer3.1.cbam.channel_attention.fc.2.weight" }!
        mixed[j] = (mixed[j].name, mixed[j].shape + [1, 1], mixed[j].values)
        expectError("shape_mismatch", containing: ["layer3.1.cbam.channel_attention.fc.2.weight", "[64,8,1,1]", "[64,8]"]) {
            _ = try load("basic_cifar_selective", mixed)
        }
    }

    @Test func badFilesAreClearErrors() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("cbam-engine-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        expectError("config_not_found", containing: ["config.json"]) { _ = try CBAMModel.load(directory: dir) }

        let source = ParityFixture.directory("basic_cifar_selective")
        for file in ["config.json", "labels.txt"] {
            try FileManager.default.copyItem(at: source.appendingPathComponent(file), to: dir.appendingPathComponent(file))
        }
        expectError("checkpoint_not_found", containing: ["model.safetensors"]) { _ = try CBAMModel.load(directory: dir) }

        try Data([1, 2, 3]).write(to: dir.appendingPathComponent("model.safetensors"))
        expectError("invalid_checkpoint", containing: ["too short"]) { _ = try CBAMModel.load(directory: dir) }
        var bogus = Data(count: 8)
        bogus[0] = 200
        try bogus.write(to: dir.appendingPathComponent("model.safetensors"))
        expectError("invalid_checkpoint", containing: ["header length 200"]) { _ = try CBAMModel.load(directory: dir) }

        try FileManager.default.removeItem(at: dir.appendingPathComponent("model.safetensors"))
        try FileManager.default.copyItem(at: source.appendingPathComponent("model.safetensors"), to: dir.appendingPathComponent("model.safetensors"))
        try "cat\ndog\n".write(to: dir.appendingPathComponent("labels.txt"), atomically: true, encoding: .utf8)
        expectError("invalid_labels", containing: ["2 labels", "10"]) { _ = try CBAMModel.load(directory: dir) }

        try FileManager.default.removeItem(at: dir.appendingPathComponent("labels.txt"))
        let model = try CBAMModel.load(directory: dir)
        #expect(model.labels == (0..<10).map(String.init))
    }

    @Test func wrongInputSizeIsAnErrorNotACrash() throws {
        let model = try CBAMModel.load(directory: ParityFixture.directory("authors_module_prefix"))
        expectError("invalid_input", containing: ["100 values", "[1,3,8,8]", "192"]) {
            _ = try model.forward([Float](repeating: 0, count: 100), batch: 1, height: 8, width: 8, attention: false)
        }
        expectError("invalid_input", containing: [">= 1"]) {
            _ = try model.forward([], batch: 0, height: 8, width: 8, attention: false)
        }
    }
}
