import ArgumentParser
import CBAMEngine
import Foundation

/// `cbam-serve predict`: classifies preprocessed inputs and prints one JSON result per image.
struct Predict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify inputs and print predictions (and optionally logits and attention maps) as JSON.",
        discussion: "An INPUT is a .npy float32 array [N,3,H,W] (or [3,H,W]), already preprocessed. One result per image.")

    enum AttentionOutput: String, ExpressibleByArgument, CaseIterable { case all, none }

    @Option(help: "Model directory (config.json, model.safetensors, optional labels.txt).")
    var model: String = ModelDirectory.defaultPath

    @Option(name: .customLong("top-k"), help: "Number of classes to report per image.")
    var topK: Int = 5

    @Flag(help: "Include the raw logits of each image.")
    var logits = false

    @Option(help: "Include the CBAM attention maps of every layer (all) or not (none).")
    var attention: AttentionOutput = .none

    @Option(help: "OpenBLAS threads (default: OpenBLAS's own choice, the number of cores).")
    var threads: Int?

    @Argument(help: "Input files (.npy).")
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
        var results: [PredictionOutput.Entry] = []
        var failed = false
        for path in inputs {
            do throws(InputError) {
                let tensor = try Self.readInput(path)
                results += try classify(tensor, from: path, with: classifier)
            } catch {
                // A bad input gets its own entry; the others still run.
                failed = true
                Self.report(error.code, error.message)
                results.append(.failure(input: path, code: error.code, message: error.message))
            }
        }
        let output = PredictionOutput(model: classifier.config.name, results: results)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        FileHandle.standardOutput.write(try encoder.encode(output) + Data("\n".utf8))
        if failed { throw ExitCode(1) }
    }

    /// A batch of preprocessed images, NCHW.
    struct InputTensor {
        var values: [Float]
        var batch: Int
        var height: Int
        var width: Int
    }

    struct InputError: Error {
        let code: String
        let message: String
    }

    /// Reads one INPUT into a batch. Image files (by extension) are where this grows.
    static func readInput(_ path: String) throws(InputError) -> InputTensor {
        let array: NPYArray
        do { array = try NPY.read(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw InputError(code: error.code, message: error.message)
        }
        var shape = array.shape
        if shape.count == 3 { shape.insert(1, at: 0) }
        guard shape.count == 4, shape[1] == 3, shape[0] >= 1, shape[2] >= 1, shape[3] >= 1 else {
            throw InputError(code: "invalid_input", message: "array has shape \(array.shape), expected [N,3,H,W] or [3,H,W] with N, H, W >= 1")
        }
        guard array.values.allSatisfy(\.isFinite) else {
            throw InputError(code: "invalid_input", message: "array contains NaN or infinite values")
        }
        return InputTensor(values: array.values, batch: shape[0], height: shape[2], width: shape[3])
    }

    /// Runs `tensor` in chunks of at most `maxBatch` images; one entry per image.
    func classify(_ tensor: InputTensor, from path: String, with classifier: CBAMModel) throws(InputError) -> [PredictionOutput.Entry] {
        let perImage = 3 * tensor.height * tensor.width
        var entries: [PredictionOutput.Entry] = []
        var start = 0
        while start < tensor.batch {
            let count = min(Self.maxBatch, tensor.batch - start)
            let result: ForwardResult
            do {
                result = try tensor.values[start * perImage..<(start + count) * perImage].withUnsafeBufferPointer {
                    try classifier.forward($0, batch: count, height: tensor.height, width: tensor.width, attention: attention == .all)
                }
            } catch let error as ModelError {
                throw InputError(code: error.code, message: "\(path): \(error.message)")
            } catch { throw InputError(code: "internal_error", message: "\(path): \(error)") }
            for image in 0..<count {
                entries.append(.success(
                    input: path, index: start + image,
                    logits: logits ? Array(result.logits(of: image)) : nil,
                    predictions: result.topK(of: image, k: topK).map {
                        .init(index: $0.index, label: classifier.labels[$0.index], probability: $0.score)
                    },
                    attention: attention == .all ? result.attention[image].map(PredictionOutput.Attention.init) : nil))
            }
            start += count
        }
        return entries
    }

    static func report(_ code: String, _ message: String) {
        FileHandle.standardError.write(Data("error: \(code): \(message)\n".utf8))
    }
}

/// The JSON `predict` prints: `{"model": ..., "results": [{"input", "index", "logits"?, "predictions", "attention"?}]}`,
/// or `{"input", "error": {"code", "message"}}` for an input that could not be classified.
struct PredictionOutput: Encodable {
    let model: String
    let results: [Entry]

    struct Prediction: Encodable {
        let index: Int
        let label: String
        let probability: Float
    }

    struct Spatial: Encodable {
        let height: Int
        let width: Int
        let data: [Float]
    }

    struct Attention: Encodable {
        let layer: String
        let channel: [Float]
        let spatial: Spatial

        init(_ map: AttentionMap) {
            layer = map.layer
            channel = map.channel
            spatial = Spatial(height: map.spatialHeight, width: map.spatialWidth, data: map.spatial)
        }
    }

    struct Failure: Encodable {
        let code: String
        let message: String
    }

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
