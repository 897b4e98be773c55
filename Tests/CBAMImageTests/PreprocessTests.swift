import Foundation
import Testing
@testable import CBAMImage

/// Differences from torchvision's tensor, in 8-bit pixel levels (|Δtensor| * std * 255).
struct Parity: CustomStringConvertible {
    var meanLevels: Double, maxLevels: Double, exactFraction: Double
    var description: String {
        String(format: "mean %.4f, max %.3f levels, %.2f%% exact", meanLevels, maxLevels, 100 * exactFraction)
    }

    init(_ ours: [Float], _ reference: [Float], std: [Double], size: Int) {
        precondition(ours.count == reference.count)
        var sum = 0.0, worst = 0.0, exact = 0
        for i in 0..<ours.count {
            let levels = Double(abs(ours[i] - reference[i])) * std[i / (size * size)] * 255
            sum += levels
            worst = max(worst, levels)
            if ours[i] == reference[i] { exact += 1 }
        }
        meanLevels = sum / Double(ours.count)
        maxLevels = worst
        exactFraction = Double(exact) / Double(ours.count)
    }
}

@Suite("Preprocessing matches torchvision")
struct PreprocessTests {
    static func preprocessor(_ c: Fixtures.PreprocessCase) -> Preprocessor {
        Preprocessor(size: c.size, resize: c.resize, mean: c.mean.map { Float($0) }, std: c.std.map { Float($0) })
    }

    @Test("full decode: Resize + CenterCrop + ToTensor + Normalize equal torchvision's (bit-exact)",
          arguments: Fixtures.manifest.preprocess)
    func fullDecodeParity(_ c: Fixtures.PreprocessCase) throws {
        let reference = try ReferenceArray(path: c.reference)
        #expect(reference.shape == [3, c.size, c.size])
        let image = try ImageDecoder().decode(try Fixtures.bytes(c.file))
        let tensor = Self.preprocessor(c).tensor(image)
        let parity = Parity(tensor, reference.float32, std: c.std, size: c.size)
        print("full decode parity \(c): \(parity)")
        // The bar is mean <= 0.5 and max <= 2 levels; the implementation reaches exact equality.
        #expect(parity.meanLevels <= 0.5 && parity.maxLevels <= 2, "\(c): \(parity)")
        #expect(parity.exactFraction == 1, "\(c): \(parity)")
    }

    @Test("DCT-scaled decode stays within 2 levels mean of torchvision's full-decode tensor",
          arguments: Fixtures.manifest.preprocess.filter { $0.file.hasSuffix(".jpg") })
    func scaledDecodeParity(_ c: Fixtures.PreprocessCase) throws {
        let reference = try ReferenceArray(path: c.reference)
        let decoded = try ImageDecoder().decodeWithDetails(try Fixtures.bytes(c.file), targetShorterSide: c.resize)
        let shorter = min(decoded.sourceWidth, decoded.sourceHeight)
        // DCT scaling is used exactly when the image is at least twice the target.
        #expect((decoded.scaleDenominator > 1) == (shorter >= 2 * c.resize), "\(c): scale 1/\(decoded.scaleDenominator)")
        #expect(min(decoded.image.width, decoded.image.height) >= c.resize)
        let parity = Parity(Self.preprocessor(c).tensor(decoded.image), reference.float32, std: c.std, size: c.size)
        print("DCT-scaled parity \(c) at 1/\(decoded.scaleDenominator): \(parity)")
        #expect(parity.meanLevels < 2, "\(c) at 1/\(decoded.scaleDenominator): \(parity)")
        if decoded.scaleDenominator == 1 { #expect(parity.exactFraction == 1) }
    }

    @Test("torchvision's output size and crop offsets, half-to-even rounding included")
    func geometry() {
        let p = Preprocessor(size: 32, resize: 36, mean: [0, 0, 0], std: [1, 1, 1])
        #expect(p.resizedSize(width: 640, height: 480) == (48, 36))
        #expect(p.resizedSize(width: 333, height: 480) == (36, 51))   // int(36 * 480 / 333) = 51
        #expect(p.resizedSize(width: 100, height: 100) == (36, 36))
        #expect(p.cropOffset(48) == 8)
        #expect(p.cropOffset(33) == 0)   // round(0.5) = 0
        #expect(p.cropOffset(37) == 2)   // round(2.5) = 2
        #expect(p.cropOffset(39) == 4)   // round(3.5) = 4
        #expect(p.cropOffset(32) == 0)
        #expect(p.cropOffset(29) == -1)  // smaller: zero-padded by (32 - 29) // 2 = 1 on the left
        let q = Preprocessor(size: 30, resize: 37, mean: [0, 0, 0], std: [1, 1, 1])
        #expect(q.cropOffset(33) == 2)   // round(1.5) = 2
        #expect(q.cropOffset(35) == 2)   // round(2.5) = 2
        #expect(q.cropOffset(37) == 4)   // round(3.5) = 4
    }

    @Test("a 20000x1 image (resized long side 5,120,000) costs only its crop")
    func thinImageIsCheap() {
        let image = RGBImage(width: 20_000, height: 1, pixels: (0..<60_000).map { UInt8($0 % 251) })
        let p = Preprocessor(size: 224, resize: 256, mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5])
        #expect(p.resizedSize(width: 20_000, height: 1) == (5_120_000, 256))
        let start = ContinuousClock.now
        let tensor = p.tensor(image)
        #expect(ContinuousClock.now - start < .seconds(2))
        #expect(tensor.count == 3 * 224 * 224 && tensor.allSatisfy { $0.isFinite && abs($0) <= 1 })
    }

    @Test("write(into:) fills one batch slot and leaves its neighbours alone")
    func writeIntoBatch() throws {
        let c = Fixtures.manifest.preprocess[0]
        let p = Self.preprocessor(c)
        let image = try ImageDecoder().decode(try Fixtures.bytes(c.file))
        var batch = [Float](repeating: .nan, count: 3 * p.elementCount)
        batch.withUnsafeMutableBufferPointer { p.write(image, into: $0.baseAddress! + p.elementCount) }
        #expect(Array(batch[p.elementCount..<(2 * p.elementCount)]) == p.tensor(image))
        #expect(batch[..<p.elementCount].allSatisfy { $0.isNaN } && batch[(2 * p.elementCount)...].allSatisfy { $0.isNaN })
    }
}
