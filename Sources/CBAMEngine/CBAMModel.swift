import Foundation
import Synchronization

/// A CBAM-ResNet classifier (Woo et al., ECCV 2018) running on the CPU:
/// stem → stages of residual blocks (CBAM inside the blocks of the stages that have it) → global average pool → fc.
///
/// Immutable after load (weights folded and prepacked); every pass borrows workspaces from the model's pool (each
/// with its buffers and execution plans) and gives them back, so passes may run concurrently.
public final class CBAMModel: Sendable {
    public let config: ModelConfig
    /// One class name per class; the class index as text where the model directory has no `labels.txt`.
    public let labels: [String]
    public let layout: CheckpointLayout
    /// Trainable parameters, as PyTorch counts them.
    public let parameterCount: Int

    /// One convolution (ImageNet, CIFAR) or three (timm's deep stem), BN and ReLU folded in.
    let stem: [Conv2D]
    let stemPool: Bool
    let blocks: [ResidualBlock]
    /// `[numClasses, features]`, packed for the GEMM kernel.
    let classifierWeight: PackedWeights
    let classifierBias: [Float]
    /// Idle workspaces; a pass takes one per slice of its batch (the most recently returned first) and returns them.
    private let pool = Mutex<[Workspace]>([])
    /// The idle workspaces, most recently returned last (for tests).
    var workspaces: [Workspace] { pool.withLock { $0 } }
    var workspace: Workspace { workspaces.last! }
    /// The execution plan of every pass shape (batch slice, height, width, threads) run so far, shared by all
    /// workspaces: a shape is measured once per model, not once per workspace.
    private let plans = Mutex<[ExecutionPlan.Key: ExecutionPlan]>([:])
    /// The number of pass shapes with a measured plan (for tests).
    var planCount: Int { plans.withLock { $0.count } }
    func plan(for key: ExecutionPlan.Key) -> ExecutionPlan? { plans.withLock { $0[key] } }

    init(config: ModelConfig, labels: [String], layout: CheckpointLayout, parameterCount: Int, stem: [Conv2D], stemPool: Bool,
         blocks: [ResidualBlock], classifierWeight: [Float], classifierBias: [Float]) {
        self.config = config
        self.labels = labels
        self.layout = layout
        self.parameterCount = parameterCount
        self.stem = stem
        self.stemPool = stemPool
        self.blocks = blocks
        self.classifierWeight = PackedWeights(classifierWeight, rows: config.numClasses, columns: classifierWeight.count / config.numClasses)
        self.classifierBias = classifierBias
        let size = config.input.size
        multiplyAddsPerPixel = Double(Self.walk(stem: stem, stemPool: stemPool, blocks: blocks, numClasses: config.numClasses,
                                                height: size, width: size).multiplyAdds) / Double(size * size)
    }

    public var numClasses: Int { config.numClasses }

    /// Multiply-adds of a pass per input pixel (at the config's input size); sizes the work of a pass.
    let multiplyAddsPerPixel: Double
    /// Passes below this many multiply-adds run on one thread (measured: docs/engine-performance.md). With the
    /// engine's spinning `WorkerPool`, a layer's split costs microseconds, so only toy passes stay on one thread.
    static let multithreadingThreshold = 1e7
    var features: Int { blocks.last?.outChannels ?? stem.last!.outChannels }

    /// The names of the blocks with attention ("layerX.Y"), in the order their maps come back.
    public var cbamLayers: [String] { blocks.filter { $0.attention != nil }.map(\.name) }

    /// The attention type of the blocks that have it; nil for a plain ResNet.
    public var attentionType: AttentionType? { blocks.lazy.compactMap(\.attention).first?.type }

    /// Classifies a batch of preprocessed images, NCHW float32 `[batch, 3, height, width]`.
    /// With `attention`, also returns each image's channel and spatial maps of every CBAM block.
    ///
    /// With more than one thread (`BLASThreads`) and more than one image, the batch is split into one slice per
    /// thread, each run with its own workspace and single-threaded GEMMs: the threads meet once per batch instead
    /// of once per GEMM, which keeps them busy on a machine that other jobs share.
    public func forward(_ input: UnsafeBufferPointer<Float>, batch: Int, height: Int, width: Int,
                        attention: Bool) throws(ModelError) -> ForwardResult {
        guard batch >= 1, height >= 1, width >= 1 else {
            throw ModelError("invalid_input", "input shape [\(batch),3,\(height),\(width)] must have every dimension >= 1")
        }
        guard input.count == batch * 3 * height * width else {
            throw ModelError("invalid_input", "input has \(input.count) values, shape [\(batch),3,\(height),\(width)] needs \(batch * 3 * height * width)")
        }
        return try forward(input, batch: batch, height: height, width: width, attention: attention,
                           slices: min(batch, BLASThreads.count))
    }

    /// `forward` with the batch split into `slices` parts run concurrently, each on one thread; a single slice
    /// splits its layers over `BLASThreads.count` threads instead, unless the pass is too small to pay for that.
    /// Each slice runs as passes of at most `imagesPerPass` images (default: `imagesPerPass(height:width:)`).
    func forward(_ input: UnsafeBufferPointer<Float>, batch: Int, height: Int, width: Int, attention: Bool,
                 slices: Int, imagesPerPass: Int? = nil) throws(ModelError) -> ForwardResult {
        _ = BLASThreads.pinOpenBLAS
        let slices = max(1, min(slices, batch))
        let most = max(1, imagesPerPass ?? self.imagesPerPass(height: height, width: width))
        return withWorkspaces(slices) { workspaces in
            if slices == 1 {
                let pass = run(input.baseAddress!, batch: batch, height: height, width: width, attention: attention,
                               threads: singleSliceThreads(batch: batch, height: height, width: width), imagesPerPass: most,
                               in: workspaces[0])
                return ForwardResult(numClasses: numClasses, logits: pass.logits, attention: pass.attention)
            }
            let perImage = 3 * height * width
            let bounds = (0...slices).map { $0 * batch / slices }
            // Each slice writes its own element, on its own thread of the pool.
            var passes = [(logits: [Float], attention: [[AttentionMap]])](repeating: ([], []), count: slices)
            passes.withUnsafeMutableBufferPointer { passes in
                parallelFor(slices, threads: slices) { i, _ in
                    passes[i] = run(input.baseAddress! + bounds[i] * perImage, batch: bounds[i + 1] - bounds[i], height: height,
                                    width: width, attention: attention, threads: 1, imagesPerPass: most, in: workspaces[i])
                }
            }
            return ForwardResult(numClasses: numClasses, logits: passes.flatMap(\.logits), attention: passes.flatMap(\.attention))
        }
    }

    /// The threads of a pass run as one slice: a small pass is over before the threads would pay for their meeting
    /// at every layer.
    func singleSliceThreads(batch: Int, height: Int, width: Int) -> Int {
        Double(batch * height * width) * multiplyAddsPerPixel < Self.multithreadingThreshold ? 1 : BLASThreads.count
    }

    /// Images per pass: as many as keep the pass's largest activation within `passActivation` floats, at least one.
    /// A larger batch runs as several passes, one after another: per image, a pass whose activations stay in the
    /// caches is faster than one whose layers stream them through memory.
    func imagesPerPass(height: Int, width: Int) -> Int {
        max(1, Self.passActivation / memoryPlan(batch: 1, height: height, width: width).activation)
    }

    /// 2 MB of floats. Measured per image, one thread, alternating runs of `cbam-bench` (docs/engine-performance.md):
    /// CBAM-ResNet-50 at 224x224 (3.2 MB of activation per image) 73.0 ms at batch 1, 72.3 at 2, 76.9 at 8; the
    /// default model (192 KB) 1.91 ms at batch 4, 1.83 at 8, 1.86 at 16, 2.02 at 64; CBAM-ResNet-20 (64 KB) 0.65 ms
    /// at batch 4, 0.64 at 8, 0.66 at 16, 0.69 at 32, 0.76 at 64.
    static let passActivation = 1 << 19

    /// The batch sizes of the passes a slice of `batch` images runs as: as even as `most` images a pass allows.
    static func passSizes(batch: Int, most: Int) -> [Int] {
        let passes = (batch + most - 1) / most
        return (0..<passes).map { ($0 + 1) * batch / passes - $0 * batch / passes }
    }

    /// The execution-plan keys of the passes `forward` cuts a batch of this shape into (see `forward`).
    func passKeys(batch: Int, height: Int, width: Int) -> [ExecutionPlan.Key] {
        let slices = max(1, min(batch, BLASThreads.count))
        let most = imagesPerPass(height: height, width: width)
        if slices == 1 {
            let threads = singleSliceThreads(batch: batch, height: height, width: width)
            return Self.passSizes(batch: batch, most: most).map { .init(batch: $0, height: height, width: width, threads: threads) }
        }
        return (0..<slices).flatMap { i in
            Self.passSizes(batch: (i + 1) * batch / slices - i * batch / slices, most: most).map {
                ExecutionPlan.Key(batch: $0, height: height, width: width, threads: 1)
            }
        }
    }

    /// Runs `body` with `count` workspaces taken from the pool (new ones where it has too few), then returns them.
    func withWorkspaces<Result>(_ count: Int, _ body: ([Workspace]) -> Result) -> Result {
        var taken = pool.withLock { idle in
            let reused = Array(idle.suffix(count).reversed())
            idle.removeLast(reused.count)
            return reused
        }
        while taken.count < count { taken.append(Workspace()) }
        defer { pool.withLock { $0.append(contentsOf: taken.reversed()) } }
        return body(taken)
    }

    /// `batch` images as passes of at most `imagesPerPass` images, one after another in `workspace`.
    func run(_ input: UnsafePointer<Float>, batch: Int, height: Int, width: Int, attention: Bool, threads: Int,
             imagesPerPass most: Int, in workspace: Workspace) -> (logits: [Float], attention: [[AttentionMap]]) {
        var result: (logits: [Float], attention: [[AttentionMap]]) = ([], [])
        var first = 0
        for size in Self.passSizes(batch: batch, most: most) {
            let pass = run(input + first * 3 * height * width, batch: size, height: height, width: width, attention: attention,
                           threads: threads, in: workspace)
            result.logits += pass.logits
            result.attention += pass.attention
            first += size
        }
        return result
    }

    /// One forward pass of `batch` images through the network in `workspace`, its convolutions on `threads` threads.
    func run(_ input: UnsafePointer<Float>, batch: Int, height: Int, width: Int, attention: Bool,
             threads: Int, in workspace: Workspace) -> (logits: [Float], attention: [[AttentionMap]]) {
        guard threads > 1 else {
            return runPass(input, batch: batch, height: height, width: width, attention: attention, threads: 1, in: workspace)
        }
        return WorkerPool.shared.duringPass {
            runPass(input, batch: batch, height: height, width: width, attention: attention, threads: threads, in: workspace)
        }
    }

    private func runPass(_ input: UnsafePointer<Float>, batch: Int, height: Int, width: Int, attention: Bool,
                         threads: Int, in workspace: Workspace) -> (logits: [Float], attention: [[AttentionMap]]) {
        let plan = memoryPlan(batch: batch, height: height, width: width, threads: threads)
        workspace.reserve(activation: plan.activation, columns: plan.columns, threads: threads, scratch: plan.scratch)
        let key = ExecutionPlan.Key(batch: batch, height: height, width: width, threads: threads)
        workspace.beginPass(plan: plans.withLock { $0[key] })
        defer {
            // Two passes of a new shape at once both measure; the first plan kept stays, so later passes agree.
            if let measured = workspace.endPass() { plans.withLock { if $0[key] == nil { $0[key] = measured } } }
        }

        let a = workspace.activations
        var buffers = BlockBuffers(input: a[0], first: a[1], second: a[2], output: a[3])
        // NCHW → the internal [C, N, H, W].
        let hw = height * width
        workspace.timed(.inputLayout) {
            for image in 0..<batch {
                for c in 0..<3 {
                    (buffers.first + (c * batch + image) * hw).update(from: input + (image * 3 + c) * hw, count: hw)
                }
            }
        }
        var x = FeatureMap(data: buffers.first, channels: 3, batch: batch, height: height, width: width)
        // A deep stem's first convolutions alternate between `output` and `first` (where the input was); the last one
        // lands where the pool (or block 1) reads.
        for (i, conv) in stem.enumerated() {
            let last = i == stem.count - 1
            let destination = last ? (stemPool ? buffers.second : buffers.input) : (i % 2 == 0 ? buffers.output : buffers.first)
            x = conv.run(x, into: destination, workspace: workspace, as: .stem)
        }
        if stemPool {
            let (oh, ow) = Self.stemPoolSize(height: x.height, width: x.width)
            workspace.timed(.pooling) {
                maxPool(x, kernel: 3, stride: 2, padding: 1, outHeight: oh, outWidth: ow, into: buffers.input, threads: threads)
            }
            x = FeatureMap(data: buffers.input, channels: x.channels, batch: batch, height: oh, width: ow)
        }

        var maps: [[AttentionMap]] = attention ? Array(repeating: [], count: batch) : []
        for block in blocks {
            x = block(x, buffers: buffers, workspace: workspace)
            buffers.advance()
            if attention, let module = block.attention {
                let (c, hw) = (x.channels, x.pixels)
                let channelMap = workspace.scratch, spatialMap = workspace.scratch + batch * c
                let spatial = module.hasSpatialMap
                for image in 0..<batch {
                    maps[image].append(AttentionMap(
                        layer: block.name,
                        channel: Array(UnsafeBufferPointer(start: channelMap + image * c, count: c)),
                        spatialHeight: spatial ? x.height : 0, spatialWidth: spatial ? x.width : 0,
                        spatial: spatial ? Array(UnsafeBufferPointer(start: spatialMap + image * hw, count: hw)) : []))
                }
            }
        }

        // Global average pool, then the fully connected classifier.
        // Features `[C, N]`, so the classifier is one GEMM on its packed weights: scores `[classes, N]`.
        let pooled = workspace.scratch
        let scores = pooled + batch * x.channels, logits = scores + batch * numClasses
        workspace.timed(.pooling) { globalAveragePool(x, into: pooled, channelMajor: true) }
        workspace.timed(.classifier, multiplyAdds: batch * x.channels * numClasses) {
            // A large classifier (ResNet-50's 2048 x 1000) is 8 MB of weights to read: threads share its rows.
            let parts = classifierWeight.rows * classifierWeight.columns >= 1 << 20 ? threads : 1
            classifierBias.withUnsafeBufferPointer { bias in
                classifierWeight.multiply(sharedBy: parts, pooled, ldb: batch, n: batch, into: scores, ldc: batch, bias: bias.baseAddress)
            }
            for image in 0..<batch {
                for j in 0..<numClasses { logits[image * numClasses + j] = scores[j * batch + image] }
            }
        }
        return (Array(UnsafeBufferPointer(start: logits, count: batch * numClasses)), maps)
    }

    /// Convenience for arrays: `input` is NCHW `[batch, 3, height, width]`.
    public func forward(_ input: [Float], batch: Int, height: Int, width: Int, attention: Bool) throws(ModelError) -> ForwardResult {
        do {
            return try input.withUnsafeBufferPointer { try forward($0, batch: batch, height: height, width: width, attention: attention) }
        } catch let error as ModelError { throw error } catch { fatalError("unreachable: \(error)") }
    }

    static func stemPoolSize(height: Int, width: Int) -> (height: Int, width: Int) {
        ((height + 2 - 3) / 2 + 1, (width + 2 - 3) / 2 + 1)
    }

    /// The largest activation, per-thread convolution buffer and scratch sizes a forward pass of this shape needs.
    func memoryPlan(batch n: Int, height: Int, width: Int, threads: Int = 1) -> (activation: Int, columns: Int, scratch: Int) {
        var activation = 3 * n * height * width
        var columns = 0
        var (h, w) = (height, width)
        for conv in stem {
            columns = max(columns, conv.bufferCount(batch: n, height: h, width: w, threads: threads))
            (h, w) = conv.outputSize(height: h, width: w)
            activation = max(activation, conv.outChannels * n * h * w)
        }
        if stemPool { (h, w) = Self.stemPoolSize(height: h, width: w) }
        var scratch = n * (features + 2 * numClasses)
        for block in blocks {
            let (inH, inW) = (h, w)
            for conv in block.convolutions {
                columns = max(columns, conv.bufferCount(batch: n, height: h, width: w, threads: threads))
                (h, w) = conv.outputSize(height: h, width: w)
                activation = max(activation, conv.outChannels * n * h * w)
            }
            if let d = block.downsample { columns = max(columns, d.bufferCount(batch: n, height: inH, width: inW, threads: threads)) }
            if let attention = block.attention {
                scratch = max(scratch, attention.scratchCount(batch: n, height: h, width: w))
            }
        }
        return (activation, max(columns, 1), scratch)
    }

    /// Architecture, size, multiply-adds of one image at `height × width` (default: the config's input size),
    /// and the CBAM layers with the shapes of their maps.
    public func summary(height: Int? = nil, width: Int? = nil) -> ModelSummary {
        let inH = height ?? config.input.size, inW = width ?? config.input.size
        let (macs, layers) = Self.walk(stem: stem, stemPool: stemPool, blocks: blocks, numClasses: numClasses,
                                       height: inH, width: inW)
        return ModelSummary(name: config.name, block: config.block.rawValue, layers: config.layers, widths: config.widths,
                            stem: config.stem.rawValue, shortcut: config.shortcut.rawValue, numClasses: numClasses,
                            attentionType: attentionType?.rawValue, checkpointLayout: layout.description,
                            parameters: parameterCount, multiplyAdds: macs, inputHeight: inH, inputWidth: inW, cbamLayers: layers)
    }

    /// Multiply-adds of one image at `height × width`, and the CBAM layers with the shapes of their maps.
    static func walk(stem: [Conv2D], stemPool: Bool, blocks: [ResidualBlock], numClasses: Int, height: Int,
                     width: Int) -> (multiplyAdds: Int, cbamLayers: [ModelSummary.CBAMLayer]) {
        var macs = 0
        var (h, w) = (height, width)
        for conv in stem {
            macs += conv.multiplyAdds(height: h, width: w)
            (h, w) = conv.outputSize(height: h, width: w)
        }
        if stemPool { (h, w) = Self.stemPoolSize(height: h, width: w) }
        var layers: [ModelSummary.CBAMLayer] = []
        for block in blocks {
            if let d = block.downsample {
                let (sh, sw) = block.shortcutPool ? averagePool2x2Size(height: h, width: w) : (h, w)
                macs += d.multiplyAdds(height: sh, width: sw)
            }
            for conv in block.convolutions {
                macs += conv.multiplyAdds(height: h, width: w)
                (h, w) = conv.outputSize(height: h, width: w)
            }
            if let attention = block.attention {
                macs += attention.multiplyAdds(height: h, width: w)
                let spatial = attention.hasSpatialMap
                layers.append(.init(layer: block.name, type: attention.type.rawValue, channels: attention.channels,
                                    hidden: attention.hidden, kernelSize: attention.kernel,
                                    spatialHeight: spatial ? h : nil, spatialWidth: spatial ? w : nil))
            }
        }
        macs += (blocks.last?.outChannels ?? stem.last!.outChannels) * numClasses
        return (macs, layers)
    }
}
