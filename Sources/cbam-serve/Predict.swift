import ArgumentParser
import CBAMEngine
import CBAMImage
import CBAMService
import Foundation
import HTTPServer

/// `cbam-serve predict`: classifies inputs and prints one JSON result per image.
struct Predict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify inputs and print predictions (and optionally logits and attention maps) as JSON.",
        discussion: """
            An INPUT is an image file (JPEG or PNG, recognised from its bytes), decoded and preprocessed as config.json's \
            'input' section says, or a .npy float32 array [N,3,H,W] (or [3,H,W]) that is already preprocessed. \
            Images of the same size run through the model together in batches. One result per image; an input \
            that fails gets its own error entry, the others are still answered, and the exit code is 1.
            """)

    enum AttentionOutput: String, ExpressibleByArgument, CaseIterable { case all, none }

    @Option(help: "Model directory (config.json, model.safetensors, optional labels.txt).")
    var model: String = ProcessInfo.processInfo.environment["CBAM_MODEL"] ?? ModelDirectory.defaultPath

    @Option(name: .customLong("top-k"), help: "Number of classes to report per image.")
    var topK: Int = 5

    @Flag(help: "Include the raw logits of each image.")
    var logits = false

    @Option(help: "Include the CBAM attention maps of every layer (all) or not (none).")
    var attention: AttentionOutput = .none

    @Option(help: "Threads a forward pass may use (default: the number of cores).")
    var threads: Int?

    @Argument(help: "Input files (JPEG, PNG or .npy).")
    var inputs: [String]

    /// Images run through the model at most this many at a time, to bound memory.
    static let maxBatch = 16

    func validate() throws {
        guard topK >= 1 else { throw ValidationError("--top-k must be >= 1") }
        if let threads, threads < 1 { throw ValidationError("--threads must be >= 1") }
        guard !inputs.isEmpty else { throw ValidationError("give at least one INPUT") }
    }

    func run() async throws {
        if let threads { BLASThreads.set(threads) }
        let classifier: CBAMModel
        do { classifier = try CBAMModel.load(directory: URL(fileURLWithPath: model)) } catch {
            Self.report(error.code, error.message)
            throw ExitCode(1)
        }
        let reader = InputReader(config: classifier.config.input)
        // Every image of every input in order, or the input's error; then batches of same-sized neighbours.
        var slots: [Result<InputImage, InputError>] = []
        for path in inputs {
            do throws(InputError) { slots += try reader.images(in: path).map { .success($0) } } catch {
                slots.append(.failure(error))
            }
        }
        var results: [PredictionOutput.Entry?] = Array(repeating: nil, count: slots.count)
        var failed = false
        var pending: [(slot: Int, image: InputImage)] = []
        func flush() {
            guard !pending.isEmpty else { return }
            do throws(InputError) {
                for (slot, entry) in zip(pending.map(\.slot), try classify(pending.map(\.image), with: classifier)) {
                    results[slot] = entry
                }
            } catch {
                for (slot, image) in pending { results[slot] = .failure(input: image.path, code: error.code, message: error.message) }
                failed = true
                Self.report(error.code, error.message)
            }
            pending.removeAll()
        }
        for (slot, item) in slots.enumerated() {
            switch item {
            case .success(let image):
                if let last = pending.last?.image, last.height != image.height || last.width != image.width { flush() }
                pending.append((slot, image))
                if pending.count == Self.maxBatch { flush() }
            case .failure(let error):
                // A bad input gets its own entry; the others still run.
                failed = true
                Self.report(error.code, "\(error.path): \(error.message)")
                results[slot] = .failure(input: error.path, code: error.code, message: error.message)
            }
        }
        flush()
        let output = PredictionOutput(model: classifier.config.name, results: results.compactMap { $0 })
        FileHandle.standardOutput.write(Data(try JSONBodyEncoder.encode(output) + Array("\n".utf8)))
        if failed { throw ExitCode(1) }
    }

    /// Runs same-sized images as one batch; one entry per image, in order.
    func classify(_ images: [InputImage], with classifier: CBAMModel) throws(InputError) -> [PredictionOutput.Entry] {
        let (height, width) = (images[0].height, images[0].width)
        let batch = images.flatMap(\.values)
        let result: ForwardResult
        do {
            result = try batch.withUnsafeBufferPointer {
                try classifier.forward($0, batch: images.count, height: height, width: width, attention: attention == .all)
            }
        } catch let error as ModelError {
            throw InputError(path: images[0].path, code: error.code, message: error.message)
        } catch { throw InputError(path: images[0].path, code: "internal_error", message: "\(error)") }
        return images.enumerated().map { i, image in
            .success(
                input: image.path, index: image.index,
                logits: logits ? Array(result.logits(of: i)) : nil,
                predictions: result.topK(of: i, k: topK).map {
                    .init(index: $0.index, label: classifier.labels[$0.index], probability: $0.score)
                },
                attention: attention == .all ? result.attention[i].map { AttentionLayer($0) } : nil)
        }
    }

    static func report(_ code: String, _ message: String) {
        FileHandle.standardError.write(Data("error: \(code): \(message)\n".utf8))
    }
}

/// The JSON `predict` prints: `{"model": ..., "results": [{"input", "index", "logits"?, "predictions", "attention"?}]}`,
/// or `{"input", "error": {"code", "message"}}` for an input that could not be classified. Written by the REST API's
/// `JSONBodyEncoder`, fields in this order; a non-finite logit or probability is null, as in the API.
struct PredictionOutput: Encodable {
    let model: String
    let results: [Entry]

    /// The same prediction, attention-layer and error objects as the REST API's.
    typealias Prediction = CBAMService.Prediction
    typealias Attention = AttentionLayer
    typealias Failure = ErrorResponse.Detail

    struct Entry: Encodable {
        let input: String
        let index: Int?
        let logits: [Float]?
        let predictions: [Prediction]?
        let attention: [Attention]?
        let error: Failure?

        static func success(input: String, index: Int, logits: [Float]?, predictions: [Prediction], attention: [Attention]?) -> Entry {
            Entry(input: input, index: index, logits: logits, predictions: predictions, attention: attention, error: nil)
        }

        static func failure(input: String, code: String, message: String) -> Entry {
            Entry(input: input, index: nil, logits: nil, predictions: nil, attention: nil, error: Failure(code: code, message: message))
        }
    }
}
