import CBAMEngine
import CBAMImage
import Foundation

/// One image of a `predict` INPUT, preprocessed: [3,height,width] float32.
struct InputImage {
    let path: String
    /// Position within its input file (a .npy holds a batch; an image file holds one).
    let index: Int
    let height: Int
    let width: Int
    let values: [Float]
}

struct InputError: Error {
    let path: String
    let code: String
    let message: String
}

/// Turns a `predict` INPUT into preprocessed images: image files (JPEG/PNG, told apart by their bytes) are
/// decoded and preprocessed as the server does; .npy arrays [N,3,H,W] or [3,H,W] are taken as they are.
struct InputReader {
    let decoder: ImageDecoder
    let preprocessor: Preprocessor
    let resize: Int

    init(config: ModelConfig.Input) {
        decoder = ImageDecoder(exifTranspose: config.exifTranspose)
        preprocessor = Preprocessor(size: config.size, resize: config.resize, mean: config.mean, std: config.std)
        resize = config.resize
    }

    func images(in path: String) throws(InputError) -> [InputImage] {
        let bytes: [UInt8]
        do { bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            throw InputError(path: path, code: "unreadable_input", message: "cannot read the file: \(error.localizedDescription)")
        }
        if bytes.starts(with: NPY.magic) { return try arrayImages(bytes, path: path) }
        let image: RGBImage
        do { image = try decoder.decode(bytes, targetShorterSide: resize) } catch {
            throw InputError(path: path, code: error.code, message: error.message)
        }
        let size = preprocessor.size
        return [InputImage(path: path, index: 0, height: size, width: size, values: preprocessor.tensor(image))]
    }

    private func arrayImages(_ bytes: [UInt8], path: String) throws(InputError) -> [InputImage] {
        let array: NPYArray
        do { array = try NPY.decode(bytes, name: path) } catch {
            throw InputError(path: path, code: error.code, message: error.message)
        }
        var shape = array.shape
        if shape.count == 3 { shape.insert(1, at: 0) }
        guard shape.count == 4, shape[1] == 3, shape[0] >= 1, shape[2] >= 1, shape[3] >= 1 else {
            throw InputError(path: path, code: "invalid_input",
                             message: "array has shape \(array.shape), expected [N,3,H,W] or [3,H,W] with N, H, W >= 1")
        }
        guard array.values.allSatisfy(\.isFinite) else {
            throw InputError(path: path, code: "invalid_input", message: "array contains NaN or infinite values")
        }
        let (height, width) = (shape[2], shape[3])
        let perImage = 3 * height * width
        return (0..<shape[0]).map {
            InputImage(path: path, index: $0, height: height, width: width,
                       values: Array(array.values[$0 * perImage..<($0 + 1) * perImage]))
        }
    }
}
