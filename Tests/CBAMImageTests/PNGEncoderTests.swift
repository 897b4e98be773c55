import Testing
@testable import CBAMImage

@Suite("PNG encoding")
struct PNGEncoderTests {
    @Test("RGB round trip through libpng is lossless", arguments: [(1, 1), (7, 3), (64, 33)])
    func rgbRoundTrip(width: Int, height: Int) throws {
        var generator = SplitMix64(seed: UInt64(width * 1000 + height))
        let pixels = (0..<(width * height * 3)).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let png = try PNGEncoder.encode(rgb: pixels, width: width, height: height)
        #expect(ImageFormat.sniff(png) == .png)
        let decoded = try ImageDecoder().decode(png)
        #expect(decoded == RGBImage(width: width, height: height, pixels: pixels))
    }

    @Test("RGBA and gray encode; decoding drops alpha / replicates gray, as PIL's convert('RGB')")
    func rgbaAndGray() throws {
        let rgba: [UInt8] = [255, 0, 0, 0, 0, 255, 0, 128, 0, 0, 255, 255, 10, 20, 30, 40]
        let decoded = try ImageDecoder().decode(try PNGEncoder.encode(rgba: rgba, width: 2, height: 2))
        #expect(decoded.pixels == [255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30])
        let gray = try ImageDecoder().decode(try PNGEncoder.encode(gray: [0, 100, 200], width: 3, height: 1))
        #expect(gray.pixels == [0, 0, 0, 100, 100, 100, 200, 200, 200])
    }

    @Test("a heat-map sized image compresses: smooth 64x64 is well under its raw size")
    func compresses() throws {
        var pixels = [UInt8]()
        for i in 0..<(64 * 64) { pixels += [UInt8(i % 64 * 4), UInt8(i / 64 * 4), 128] }
        let png = try PNGEncoder.encode(rgb: pixels, width: 64, height: 64)
        #expect(png.count < pixels.count / 4, "\(png.count) bytes")
    }

    @Test("wrong buffer sizes are errors, not crashes")
    func invalidArguments() {
        #expect(throws: ImageError.self) { try PNGEncoder.encode(rgb: [1, 2, 3], width: 2, height: 1) }
        #expect(throws: ImageError.self) { try PNGEncoder.encode(rgb: [], width: 0, height: 0) }
        #expect(throws: ImageError.self) { try PNGEncoder.encode(rgba: [1, 2, 3], width: 1, height: 1) }
    }
}
