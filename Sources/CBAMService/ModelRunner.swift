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

/// A prepared tensor whose element count is not `count * 3 * size * size`.
struct PreparedTensorSizeError: Error, CustomStringConvertible {
    /// The job's index in the batch; nil when the batch's image count disagrees with its jobs'.
    let job: Int?
    let count: Int
    let size: Int
    let elements: Int

    var description: String {
        let subject = job.map { "job \($0) of the batch" } ?? "the batch"
        return "\(subject) has \(elements) floats, \(count) images of [3,\(size),\(size)] need \(count * 3 * size * size)"
    }
}

/// Runs batches of prepared images through the model, on the queue's inference thread: copies the requests'
/// tensors into one reused NCHW buffer (a batch of one request is passed as it is), makes one forward call, and
/// hands each request its rows back.
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
        // A wrong-sized tensor fails this batch (500 inference_failed), never the process.
        for (index, input) in inputs.enumerated() where input.tensor.count != input.count * perImage {
            throw PreparedTensorSizeError(job: index, count: input.count, size: size, elements: input.tensor.count)
        }
        guard inputs.reduce(0, { $0 + $1.count }) == imageCount else {
            throw PreparedTensorSizeError(job: nil, count: imageCount, size: size,
                                          elements: inputs.reduce(0) { $0 + $1.tensor.count })
        }
        let attention = inputs.contains { $0.wantsAttention }
        let result: ForwardResult
        if inputs.count == 1 {
            // One request's tensor is already the batch: no copy.
            result = try inputs[0].tensor.withUnsafeBufferPointer { tensor throws(ModelError) in
                try model.forward(tensor, batch: imageCount, height: size, width: size, attention: attention)
            }
        } else {
            if buffer.count < needed {
                buffer.deallocate()
                buffer = .allocate(capacity: needed)
            }
            var offset = 0
            for input in inputs {
                _ = UnsafeMutableBufferPointer(rebasing: buffer[offset..<offset + input.tensor.count]).initialize(from: input.tensor)
                offset += input.tensor.count
            }
            result = try model.forward(UnsafeBufferPointer(rebasing: buffer[0..<needed]), batch: imageCount,
                                       height: size, width: size, attention: attention)
        }
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
