import Foundation
import Testing
@testable import CBAMEngine

/// The engine against PyTorch on the committed fixtures: logits within 1e-3, attention maps within 2e-4.
@Suite struct ParityTests {
    @Test(arguments: ParityFixture.names)
    func logitsAndAttentionMatchPyTorch(_ name: String) throws {
        let fixture = try ParityFixture(name)
        let model = try CBAMModel.load(directory: fixture.directory)
        let result = try model.forward(fixture.input.values, batch: fixture.batch, height: fixture.height, width: fixture.width,
                                       attention: true)
        try expectParity(result, fixture, model: model)
    }

    @Test(arguments: ParityFixture.names)
    func eachImageAloneGivesTheSameLogitsAsTheBatch(_ name: String) throws {
        let fixture = try ParityFixture(name)
        let model = try CBAMModel.load(directory: fixture.directory)
        let batched = try model.forward(fixture.input.values, batch: fixture.batch, height: fixture.height, width: fixture.width,
                                        attention: true)
        let perImage = fixture.input.values.count / fixture.batch
        for image in 0..<fixture.batch {
            let one = Array(fixture.input.values[image * perImage..<(image + 1) * perImage])
            let single = try model.forward(one, batch: 1, height: fixture.height, width: fixture.width, attention: true)
            #expect(maxAbsDifference(single.logits, batched.logits(of: image)) <= 1e-4)
            #expect(single.attention[0].count == batched.attention[image].count)
            for (alone, inBatch) in zip(single.attention[0], batched.attention[image]) {
                #expect(alone.layer == inBatch.layer)
                #expect(maxAbsDifference(alone.channel, inBatch.channel) <= 1e-5)
                #expect(maxAbsDifference(alone.spatial, inBatch.spatial) <= 1e-5)
            }
        }
    }

    /// The batch split across threads, each slice with its own workspace, gives the same results as one pass.
    @Test(arguments: ParityFixture.names)
    func batchSlicedAcrossThreadsMatchesPyTorch(_ name: String) throws {
        let fixture = try ParityFixture(name)
        let model = try CBAMModel.load(directory: fixture.directory)
        for slices in 2...fixture.batch {
            let result = try fixture.input.values.withUnsafeBufferPointer {
                try model.forward($0, batch: fixture.batch, height: fixture.height, width: fixture.width, attention: true, slices: slices)
            }
            try expectParity(result, fixture, model: model)
        }
        #expect(model.workspaces.count == fixture.batch)
    }

    /// The batch run as passes of fewer images, one after another in one workspace (as a batch whose activations
    /// would outgrow the caches runs), on one slice and on two, gives PyTorch's results, each image in its place.
    @Test(arguments: ParityFixture.names)
    func batchRunAsSeveralPassesMatchesPyTorch(_ name: String) throws {
        let fixture = try ParityFixture(name)
        let model = try CBAMModel.load(directory: fixture.directory)
        for (slices, most) in [(1, 1), (1, fixture.batch - 1), (2, 1)] {
            let result = try fixture.input.values.withUnsafeBufferPointer {
                try model.forward($0, batch: fixture.batch, height: fixture.height, width: fixture.width, attention: true,
                                  slices: slices, imagesPerPass: most)
            }
            try expectParity(result, fixture, model: model)
        }
        #expect(CBAMModel.passSizes(batch: 8, most: 3) == [2, 3, 3])
        #expect(CBAMModel.passSizes(batch: 8, most: 8) == [8])
        #expect(CBAMModel.passSizes(batch: 1, most: 4) == [1])
    }

    /// The passes a batch runs as keep their largest activation within the budget: one image at a time where a
    /// single image's activations exceed it.
    @Test func imagesPerPassFollowTheActivationBudget() throws {
        let model = try CBAMModel.load(directory: ParityFixture.directory("bottleneck_imagenet"))
        for size in [32, 97, 224] {
            let perImage = model.memoryPlan(batch: 1, height: size, width: size).activation
            let most = model.imagesPerPass(height: size, width: size)
            #expect(most >= 1)
            #expect(most == 1 || model.memoryPlan(batch: most, height: size, width: size).activation <= CBAMModel.passActivation)
            #expect(perImage * (most + 1) > CBAMModel.passActivation)
        }
    }

    /// One slice whose layers (convolutions, attention pools, the refine) are split over 2 and 3 threads of the
    /// worker pool gives the same results as PyTorch.
    @Test(arguments: ParityFixture.names)
    func layersSplitAcrossThreadsMatchPyTorch(_ name: String) throws {
        let fixture = try ParityFixture(name)
        let model = try CBAMModel.load(directory: fixture.directory)
        for threads in [2, 3] {
            let pass = fixture.input.values.withUnsafeBufferPointer { input in
                model.withWorkspaces(1) { workspaces in
                    model.run(input.baseAddress!, batch: fixture.batch, height: fixture.height, width: fixture.width,
                              attention: true, threads: threads, in: workspaces[0])
                }
            }
            try expectParity(ForwardResult(numClasses: model.numClasses, logits: pass.logits, attention: pass.attention),
                             fixture, model: model)
        }
    }

    /// Exactly the same logits: both passes follow the plans measured first. (The pass that measures a plan may
    /// differ from later ones in the last bits: the batch's two slices measure at once, and a slice that kept another
    /// algorithm than the plan that stays rounds differently; this test failed that way about once in ten runs.)
    @Test func attentionIsEmptyWhenNotAskedAndLogitsAreTheSame() throws {
        let fixture = try ParityFixture("bottleneck_imagenet")
        let model = try CBAMModel.load(directory: fixture.directory)
        try model.warmUp(batchSizes: [fixture.batch], height: fixture.height, width: fixture.width)
        let with = try model.forward(fixture.input.values, batch: fixture.batch, height: fixture.height, width: fixture.width, attention: true)
        let without = try model.forward(fixture.input.values, batch: fixture.batch, height: fixture.height, width: fixture.width, attention: false)
        #expect(without.attention.isEmpty)
        #expect(with.logits == without.logits)
    }

    @Test(arguments: ParityFixture.names)
    func summaryCountsParametersAndMultiplyAddsAsPyTorch(_ name: String) throws {
        let fixture = try ParityFixture(name)
        let model = try CBAMModel.load(directory: fixture.directory)
        let summary = model.summary(height: fixture.height, width: fixture.width)
        #expect(summary.parameters == fixture.reference.parameters)
        #expect(summary.multiplyAdds == fixture.reference.multiplyAdds)
        let result = try model.forward(Array(fixture.input.values[0..<(3 * fixture.height * fixture.width)]), batch: 1,
                                       height: fixture.height, width: fixture.width, attention: true)
        #expect(summary.cbamLayers.map(\.layer) == result.attention[0].map(\.layer))
        #expect(summary.cbamLayers.map(\.spatialHeight) == result.attention[0].map { $0.hasSpatialMap ? $0.spatialHeight : nil })
        #expect(summary.cbamLayers.map(\.spatialWidth) == result.attention[0].map { $0.hasSpatialMap ? $0.spatialWidth : nil })
        #expect(summary.cbamLayers.map(\.channels) == result.attention[0].map(\.channel.count))
    }

    @Test func detectsEachCheckpointLayout() throws {
        #expect(try CBAMModel.load(directory: ParityFixture.directory("bottleneck_imagenet")).layout == .canonical(mlp: .conv, name: "mlp", bias: false))
        #expect(try CBAMModel.load(directory: ParityFixture.directory("basic_cifar_selective")).layout == .canonical(mlp: .linear, name: "fc", bias: true))
        #expect(try CBAMModel.load(directory: ParityFixture.directory("authors_module_prefix")).layout == .authors)
        #expect(try CBAMModel.load(directory: ParityFixture.directory("timm_seresnet")).layout == .timm(.se))
        #expect(try CBAMModel.load(directory: ParityFixture.directory("timm_ecaresnet_deep_avgdown")).layout == .timm(.eca))
        #expect(try CBAMModel.load(directory: ParityFixture.directory("timm_cbam_resnet")).layout == .timm(.cbam))
        #expect(try CBAMModel.load(directory: ParityFixture.directory("casa_cbam_resnet18")).layout == .caSa)
        #expect(try CBAMModel.load(directory: ParityFixture.directory("renamed_seresnet")).layout == .timm(.se))
    }

    @Test func attentionTypeAndMapsFollowTheCheckpoint() throws {
        for (name, type) in [("timm_seresnet", AttentionType.se), ("timm_ecaresnet_deep_avgdown", .eca), ("timm_cbam_resnet", .cbam)] {
            let fixture = try ParityFixture(name)
            let model = try CBAMModel.load(directory: fixture.directory)
            #expect(model.attentionType == type)
            let result = try model.forward(fixture.input.values, batch: fixture.batch, height: fixture.height, width: fixture.width,
                                           attention: true)
            #expect(result.attention.allSatisfy { $0.allSatisfy { $0.hasSpatialMap == type.hasSpatialMap } })
            #expect(model.summary().cbamLayers.allSatisfy { ($0.spatialHeight != nil) == type.hasSpatialMap && $0.type == type.rawValue })
        }
    }

    @Test func timmMLPWidthsAndECAKernelsAreReadFromTheTensors() throws {
        // timm rounds SE's hidden width up to a multiple of 8 (16 channels / 16 -> 8) and sizes ECA's kernel per block.
        let se = try CBAMModel.load(directory: ParityFixture.directory("timm_seresnet")).summary()
        #expect(se.cbamLayers.map(\.hidden) == [8, 8, 8, 8])
        let eca = try CBAMModel.load(directory: ParityFixture.directory("timm_ecaresnet_deep_avgdown")).summary()
        #expect(eca.cbamLayers.map(\.kernelSize) == [3, 3, 5, 5])  // 32, 64, 128, 256 channels
        #expect(eca.stem == "deep" && eca.shortcut == "avgpool")
    }

    @Test func selectiveStagesOnlyHaveCBAMWhereTheConfigSays() throws {
        let model = try CBAMModel.load(directory: ParityFixture.directory("basic_cifar_selective"))
        #expect(model.cbamLayers == ["layer2.0", "layer2.1", "layer3.0", "layer3.1"])
        #expect(model.labels.first == "airplane" && model.labels.count == 10)
    }

    /// CBAM-ResNet-50 at 224x224 against PyTorch. The fixture is 110 MB, so it is generated, not committed:
    /// `python3 tools/make_engine_fixtures.py --r50 /tmp/cbam_r50 && CBAM_R50_FIXTURE=/tmp/cbam_r50 swift test`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CBAM_R50_FIXTURE"] != nil, "set CBAM_R50_FIXTURE to run"))
    func resnet50At224MatchesPyTorch() throws {
        let fixture = try ParityFixture(directory: URL(fileURLWithPath: ProcessInfo.processInfo.environment["CBAM_R50_FIXTURE"]!))
        let model = try CBAMModel.load(directory: fixture.directory)
        let summary = model.summary()
        #expect(summary.parameters == fixture.reference.parameters)
        #expect((Double(summary.parameters) / 1e6 * 100).rounded() / 100 == 28.07)
        #expect(summary.multiplyAdds == fixture.reference.multiplyAdds)
        #expect(summary.cbamLayers.count == 16)
        let result = try model.forward(fixture.input.values, batch: fixture.batch, height: fixture.height, width: fixture.width,
                                       attention: true)
        try expectParity(result, fixture, model: model)
    }
}

extension ParityTests {
    /// timm's ECA-ResNet-50d (deep stem, average-pool shortcut, ECA kernels sized per block) at 224x224 against timm,
    /// generated, not committed (100 MB): `python3 tools/make_layout_fixtures.py --r50 /tmp/ecaresnet50d &&
    /// CBAM_LAYOUT_R50_FIXTURE=/tmp/ecaresnet50d swift test --filter ecaResNet50dAt224`.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["CBAM_LAYOUT_R50_FIXTURE"] != nil, "set CBAM_LAYOUT_R50_FIXTURE to run"))
    func ecaResNet50dAt224MatchesTimm() throws {
        let fixture = try ParityFixture(directory: URL(fileURLWithPath: ProcessInfo.processInfo.environment["CBAM_LAYOUT_R50_FIXTURE"]!))
        let model = try CBAMModel.load(directory: fixture.directory)
        let summary = model.summary()
        #expect(model.layout == .timm(.eca) && summary.stem == "deep" && summary.shortcut == "avgpool")
        #expect(summary.parameters == fixture.reference.parameters)
        #expect(summary.multiplyAdds == fixture.reference.multiplyAdds)
        #expect(summary.cbamLayers.count == 16)
        let result = try model.forward(fixture.input.values, batch: fixture.batch, height: fixture.height, width: fixture.width,
                                       attention: true)
        try expectParity(result, fixture, model: model)
        print("ecaresnet50d: \(summary.parameters) parameters, \(summary.multiplyAdds) multiply-adds")
    }
}

/// Logits ≤ 1e-3 and every attention map ≤ 2e-4 from PyTorch's; prints the worst differences.
func expectParity(_ result: ForwardResult, _ fixture: ParityFixture, model: CBAMModel) throws {
    let logits = try fixture.expected.floats("logits")
    let logitError = maxAbsDifference(result.logits, logits)
    #expect(logitError <= 1e-3, "max abs logit error \(logitError)")
    let layers = model.cbamLayers
    let spatialMaps = model.attentionType?.hasSpatialMap ?? false
    #expect(Set(fixture.expected.entries.keys) == Set(["logits"] + layers.flatMap { ["\($0).channel"] + (spatialMaps ? ["\($0).spatial"] : []) }))
    var channelError: Float = 0, spatialError: Float = 0
    for (index, layer) in layers.enumerated() {
        let channel = try fixture.expected.floats("\(layer).channel")
        let c = channel.count / fixture.batch
        for image in 0..<fixture.batch {
            let map = result.attention[image][index]
            #expect(map.layer == layer)
            channelError = max(channelError, maxAbsDifference(map.channel, channel[image * c..<(image + 1) * c]))
            #expect(map.hasSpatialMap == spatialMaps)
            guard spatialMaps else { continue }
            let spatialShape = fixture.expected.entries["\(layer).spatial"]!.shape
            let spatial = try fixture.expected.floats("\(layer).spatial")
            let hw = spatial.count / fixture.batch
            #expect([map.spatialHeight, map.spatialWidth] == Array(spatialShape[1...]))
            spatialError = max(spatialError, maxAbsDifference(map.spatial, spatial[image * hw..<(image + 1) * hw]))
        }
    }
    #expect(channelError <= 2e-4, "max abs channel-map error \(channelError)")
    #expect(spatialError <= 2e-4, "max abs spatial-map error \(spatialError)")
    print("parity \(fixture.directory.lastPathComponent): batch \(fixture.batch) \(fixture.height)x\(fixture.width), "
          + "max abs error logits \(logitError), channel maps \(channelError), spatial maps \(spatialError)")
}
