import CBAMEngine

/// The images of one request, already decoded and preprocessed: NCHW `[count, 3, size, size]`.
public struct PreparedImages: Sendable {
    public let tensor: [Float]
    public let count: Int
    /// Whether this request wants the attention maps back.
    public let wantsAttention: Bool

    public init(tensor: [Float], count: Int, wantsAttention: Bool) {
        self.tensor = tensor
        self.count = count
        self.wantsAttention = wantsAttention
    }
}

/// The engine's answer for one request's images.
public struct ImagesOutput: Sendable {
    /// `[count, numClasses]`, row-major.
    public let logits: [Float]
    /// `[image][CBAM layer]`; empty unless the request wanted attention.
    public let attention: [[AttentionMap]]
}

/// Runs batches of prepared images through the model, on the queue's inference thread: copies every request's
/// tensor into one reused NCHW buffer, makes one forward call, and hands each request its rows back.
final class ModelRunner: BatchRunner {
    typealias Input = PreparedImages
    typealias Output = ImagesOutput

    let model: CBAMModel
    let size: Int
    private var buffer: UnsafeMutableBufferPointer<Float>

    init(model: CBAMModel) {
        self.model = model
        self.size = model.config.input.size
        buffer = .allocate(capacity: 0)
    }

    deinit { buffer.deallocate() }

    func run(_ inputs: [PreparedImages], imageCount: Int) throws -> [ImagesOutput] {
        let perImage = 3 * size * size
        let needed = imageCount * perImage
        if buffer.count < needed {
            buffer.deallocate()
            buffer = .allocate(capacity: needed)
        }
        var offset = 0
        for input in inputs {
            precondition(input.tensor.count == input.count * perImage, "a prepared tensor has the wrong size")
            _ = UnsafeMutableBufferPointer(rebasing: buffer[offset..<offset + input.tensor.count]).initialize(from: input.tensor)
            offset += input.tensor.count
        }
        let attention = inputs.contains { $0.wantsAttention }
        let result = try model.forward(UnsafeBufferPointer(rebasing: buffer[0..<needed]), batch: imageCount,
                                       height: size, width: size, attention: attention)
        let classes = result.numClasses
        var outputs: [ImagesOutput] = []
        outputs.reserveCapacity(inputs.count)
        var image = 0
        for input in inputs {
            let rows = image..<image + input.count
            outputs.append(ImagesOutput(
                logits: Array(result.logits[rows.lowerBound * classes..<rows.upperBound * classes]),
                attention: input.wantsAttention ? Array(result.attention[rows]) : []))
            image += input.count
        }
        return outputs
    }
}
