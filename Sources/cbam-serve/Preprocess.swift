import ArgumentParser
import CBAMEngine
import CBAMImage
import Foundation

/// `cbam-serve preprocess --model DIR --output OUT.npy IMAGE`: the float32 [1,3,size,size] tensor the engine
/// would see for IMAGE, decoded and preprocessed as the server does (config.json's `input` section).
struct Preprocess: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the model's input tensor for an image (JPEG/PNG) as a float32 [1,3,size,size] .npy file.")

    @Option(name: .long, help: "Model directory; its config.json 'input' section sets size, resize, mean, std.")
    var model: String = ProcessInfo.processInfo.environment["CBAM_MODEL"] ?? ModelDirectory.defaultPath

    @Option(name: [.short, .long], help: "Where to write the .npy file.")
    var output: String

    @Flag(name: .long, help: "Decode every pixel, even where the server would use JPEG DCT scaling (bit-exact with torchvision).")
    var fullDecode = false

    @Argument(help: "The image file (JPEG or PNG; the format is read from the bytes).")
    var image: String

    func run() async throws {
        let config = try ModelConfig.load(from: URL(fileURLWithPath: model).appendingPathComponent("config.json"))
        let input = config.input
        let bytes: [UInt8]
        do { bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: image))) } catch {
            throw ValidationError("cannot read \(image): \(error.localizedDescription)")
        }
        let decoder = ImageDecoder(exifTranspose: input.exifTranspose)
        let decoded = try decoder.decodeWithDetails(bytes, targetShorterSide: fullDecode ? nil : input.resize)
        let preprocessor = Preprocessor(size: input.size, resize: input.resize, mean: input.mean, std: input.std)
        let tensor = preprocessor.tensor(decoded.image)
        try NPY.write(NPYArray(shape: [1, 3, input.size, input.size], values: tensor), to: URL(fileURLWithPath: output))
        let scale = decoded.scaleDenominator > 1 ? ", decoded at 1/\(decoded.scaleDenominator)" : ""
        print("\(output): float32 [1, 3, \(input.size), \(input.size)] from \(image) " +
              "(\(decoded.format.rawValue) \(decoded.sourceWidth)x\(decoded.sourceHeight)\(scale))")
    }
}
