import Foundation

extension CBAMModel {
    /// Loads a model directory: `config.json`, `model.safetensors` and an optional `labels.txt`.
    public static func load(directory: URL) throws(ModelError) -> CBAMModel {
        let config: ModelConfig
        do { config = try ModelConfig.load(from: directory.appendingPathComponent("config.json")) } catch let error as ModelError {
            throw error
        } catch { throw ModelError("invalid_config", "\(error)") }
        let labels = try readLabels(directory.appendingPathComponent("labels.txt"), classes: config.numClasses)
        let weights = try SafeTensors(contentsOf: directory.appendingPathComponent("model.safetensors"))
        return try CBAMModel(config: config, labels: labels, weights: weights)
    }

    /// Builds the model the config describes from a checkpoint's tensors, folding each BN into its convolution.
    public convenience init(config: ModelConfig, labels: [String]? = nil, weights: SafeTensors) throws(ModelError) {
        do { try config.validate() } catch let error as ModelError { throw error } catch { throw .invalidConfig("\(error)") }
        let checkpoint = try Checkpoint(weights, rename: RenameMap(config.rename))
        let layout = try CheckpointLayout.detect(in: checkpoint, attention: config.attention?.kind)

        func convBN(_ conv: String, _ bn: String, in cin: Int, out cout: Int, kernel k: Int, stride: Int, relu: Bool) throws(ModelError) -> Conv2D {
            let w = try checkpoint.tensor("\(conv).weight", shape: [cout, cin, k, k])
            let norm = try BatchNorm(reading: bn, channels: cout, from: checkpoint)
            return Conv2D(inChannels: cin, outChannels: cout, kernel: k, stride: stride, padding: k / 2, relu: relu,
                          convolution: w, batchNorm: norm)
        }

        // The stem's widths are the tensors' (timm's stem is 64 wide, or twice its stem width when deep, whatever the
        // first stage's width; its "tiered" deep stem narrows the first conv); `widths[0]` where a tensor is missing.
        func width(_ name: String, _ fallback: Int) -> Int { checkpoint.shape(of: name)?.first ?? fallback }
        let stem: [Conv2D]
        switch config.stem {
        case .imagenet: stem = [try convBN("conv1", "bn1", in: 3, out: width("conv1.weight", config.widths[0]), kernel: 7, stride: 2, relu: true)]
        case .cifar: stem = [try convBN("conv1", "bn1", in: 3, out: width("conv1.weight", config.widths[0]), kernel: 3, stride: 1, relu: true)]
        case .deep:
            let out = width("conv1.6.weight", config.widths[0])
            let first = width("conv1.0.weight", out / 2), second = width("conv1.3.weight", out / 2)
            stem = [try convBN("conv1.0", "conv1.1", in: 3, out: first, kernel: 3, stride: 2, relu: true),
                    try convBN("conv1.3", "conv1.4", in: first, out: second, kernel: 3, stride: 1, relu: true),
                    try convBN("conv1.6", "bn1", in: second, out: out, kernel: 3, stride: 1, relu: true)]
        }
        let stemPool = config.stem != .cifar
        var blocks: [ResidualBlock] = []
        var inplanes = stem.last!.outChannels
        let expansion = config.block.expansion
        for (stage, (count, width)) in zip(config.layers, config.widths).enumerated() {
            for index in 0..<count {
                let name = "layer\(stage + 1).\(index)"
                let stride = stage > 0 && index == 0 ? 2 : 1
                let out = width * expansion
                var convs: [Conv2D] = []
                switch config.block {
                case .basic:
                    convs.append(try convBN("\(name).conv1", "\(name).bn1", in: inplanes, out: width, kernel: 3, stride: stride, relu: true))
                    convs.append(try convBN("\(name).conv2", "\(name).bn2", in: width, out: width, kernel: 3, stride: 1, relu: false))
                case .bottleneck:
                    convs.append(try convBN("\(name).conv1", "\(name).bn1", in: inplanes, out: width, kernel: 1, stride: 1, relu: true))
                    convs.append(try convBN("\(name).conv2", "\(name).bn2", in: width, out: width, kernel: 3, stride: stride, relu: true))
                    convs.append(try convBN("\(name).conv3", "\(name).bn3", in: width, out: out, kernel: 1, stride: 1, relu: false))
                }
                var downsample: Conv2D?
                let pooled = config.shortcut == .avgpool && stride != 1
                if stride != 1 || inplanes != out {
                    downsample = config.shortcut == .avgpool
                        ? try convBN("\(name).downsample.1", "\(name).downsample.2", in: inplanes, out: out, kernel: 1, stride: 1, relu: false)
                        : try convBN("\(name).downsample.0", "\(name).downsample.1", in: inplanes, out: out, kernel: 1,
                                     stride: stride, relu: false)
                }
                var attention: BlockAttention?
                if let config = config.attention, config.stages[stage] {
                    attention = try layout.readAttention(block: name, channels: out, config: config, from: checkpoint)
                }
                blocks.append(ResidualBlock(name: name, convolutions: convs, downsample: downsample, shortcutPool: pooled,
                                            attention: attention))
                inplanes = out
            }
        }
        let fcWeight = try checkpoint.tensor("fc.weight", shape: [config.numClasses, inplanes])
        let fcBias = try checkpoint.tensor("fc.bias", shape: [config.numClasses])
        do { try checkpoint.checkAllUsed() } catch {
            throw ModelError(error.code, error.message + "; attention layout: \(layout)"
                                 + (layout == .none && config.attention == nil ? " (config has no attention)" : ""))
        }

        self.init(config: config, labels: labels ?? (0..<config.numClasses).map(String.init), layout: layout,
                  parameterCount: checkpoint.parameterCount, stem: stem, stemPool: stemPool, blocks: blocks,
                  classifierWeight: fcWeight, classifierBias: fcBias)
    }

    /// One class name a line; blank trailing lines ignored. Absent file: nil.
    static func readLabels(_ url: URL, classes: Int) throws(ModelError) -> [String]? {
        guard FileManager.default.fileExists(atPath: url.path) else { return nil }
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw ModelError("invalid_labels", "cannot read \(url.path) as UTF-8 text: \(error.localizedDescription)")
        }
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard lines.count == classes else {
            throw ModelError("invalid_labels", "labels.txt has \(lines.count) labels, config num_classes is \(classes)")
        }
        return lines
    }
}
