import Foundation
import Testing
@testable import CBAMEngine

/// Issue 18: an unknown layout names its first unmatched tensors and the layouts tried; a checkpoint whose attention
/// is another type than the config's says so; the rename map's own mistakes are errors.
@Suite struct LayoutErrorTests {
    let base = CheckpointErrorTests()

    @Test func renamedCheckpointWithoutItsRenameMapIsAnUnknownLayout() throws {
        var config = try base.config("renamed_seresnet")
        config.rename = nil
        base.expectError("unknown_layout", containing: ["stages.1.blocks.0.", "layouts tried", "canonical", "authors", "timm", "ca/sa", "rename"]) {
            _ = try base.load("renamed_seresnet", base.tensors("renamed_seresnet"), config: config)
        }
    }

    @Test func attentionTypeOtherThanTheCheckpointsIsNamed() throws {
        var config = try base.config("timm_seresnet")
        config.attention?.type = "eca"
        base.expectError("attention_type_mismatch", containing: ["\"eca\"", "layer1.0.se.fc1", "SE"]) {
            _ = try base.load("timm_seresnet", base.tensors("timm_seresnet"), config: config)
        }
    }

    @Test func unknownAttentionTypeListsTheKnownOnes() throws {
        var config = try base.config("timm_seresnet")
        config.attention?.type = "gc"
        base.expectError("invalid_config", containing: ["\"gc\"", "\"cbam\", \"se\", \"eca\""]) {
            _ = try base.load("timm_seresnet", base.tensors("timm_seresnet"), config: config)
        }
    }

    @Test func renameRulesThatCollideOrDoNotCompileAreErrors() throws {
        var config = try base.config("timm_seresnet")
        config.rename = [["(unclosed", "x"]]
        base.expectError("invalid_config", containing: ["rename[0]", "(unclosed"]) {
            _ = try base.load("timm_seresnet", base.tensors("timm_seresnet"), config: config)
        }
        config.rename = [["\\.running_(mean|var)$", ".running"]]
        base.expectError("rename_collision", containing: ["running_mean", "running_var", ".running"]) {
            _ = try base.load("timm_seresnet", base.tensors("timm_seresnet"), config: config)
        }
    }

    @Test func renameRulesSeeNamesWithoutTheModulePrefix() throws {
        let tensors = try base.tensors("renamed_seresnet")
        let plain = try base.load("renamed_seresnet", tensors)
        let wrapped = try base.load("renamed_seresnet", tensors.map { ("module." + $0.name, $0.shape, $0.values) })
        let fixture = try ParityFixture("renamed_seresnet")
        let a = try plain.forward(fixture.input.values, batch: fixture.batch, height: fixture.height, width: fixture.width, attention: false)
        let b = try wrapped.forward(fixture.input.values, batch: fixture.batch, height: fixture.height, width: fixture.width, attention: false)
        // Two models with their own timed execution plans (which may pick different Winograd variants): equal to
        // rounding, where a misread tensor would change the logits outright.
        #expect(maxAbsDifference(a.logits, b.logits) <= 1e-4)
        #expect(wrapped.layout == .timm(.se))
    }

    @Test func missingECAKernelIsNamedWithItsExpectedShape() throws {
        let all = try base.tensors("timm_ecaresnet_deep_avgdown")
        base.expectError("missing_tensor", containing: ["layer3.0.se.conv.weight", "[1,1,k]"]) {
            _ = try base.load("timm_ecaresnet_deep_avgdown", all.filter { $0.name != "layer3.0.se.conv.weight" })
        }
    }

    @Test func averagePoolShortcutConfigOnAConvShortcutCheckpointNamesTheTensor() throws {
        var config = try base.config("timm_seresnet")
        config.shortcut = .avgpool
        // The conv shortcut's BN sits where the average-pool shortcut's conv would be.
        base.expectError("shape_mismatch", containing: ["layer1.0.downsample.1.weight", "[16]", "[16,64,1,1]"]) {
            _ = try base.load("timm_seresnet", base.tensors("timm_seresnet"), config: config)
        }
    }

    @Test func averagePoolMatchesPyTorchsCeilModeWithoutPadding() {
        // 3x5 map: windows at the right and bottom edges are partial, their mean is over the pixels inside.
        var input: [Float] = (0..<15).map(Float.init)
        var output = [Float](repeating: 0, count: 6)
        let map = input.withUnsafeMutableBufferPointer { i in
            output.withUnsafeMutableBufferPointer { o in
                averagePool2x2(FeatureMap(data: i.baseAddress!, channels: 1, batch: 1, height: 3, width: 5), into: o.baseAddress!)
            }
        }
        #expect((map.height, map.width) == (2, 3))
        let expected: [Float] = [12 / 4, 20 / 4, 13 / 2, 21 / 2, 25 / 2, 14]  // (0+1+5+6)/4, (2+3+7+8)/4, (4+9)/2, ...
        #expect(output == expected)
    }
}
