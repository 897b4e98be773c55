import Testing
@testable import CBAMImage

@Suite("Decoding matches PIL's Image.open(f).convert('RGB')")
struct DecodeTests {
    @Test("every fixture variant decodes to PIL's exact pixels", arguments: Fixtures.manifest.decode)
    func matchesPIL(_ fixture: Fixtures.DecodeCase) throws {
        let bytes = try Fixtures.bytes(fixture.file)
        let reference = try ReferenceArray(path: fixture.reference)
        let image = try ImageDecoder(exifTranspose: fixture.exif_transpose).decode(bytes)
        #expect([image.height, image.width, 3] == reference.shape, "\(fixture.note)")
        let expected = reference.uint8
        var maxDiff = 0, differing = 0
        for (a, b) in zip(image.pixels, expected) where a != b {
            differing += 1
            maxDiff = max(maxDiff, abs(Int(a) - Int(b)))
        }
        #expect(differing == 0, "\(fixture.file) (\(fixture.note)): \(differing) samples differ, max by \(maxDiff)")
    }

    @Test("the fixture set covers the variants issue 3 lists")
    func coverage() {
        let files = Set(Fixtures.manifest.decode.map(\.file))
        for name in ["jpeg/cjpeg_arithmetic.jpg", "jpeg/cjpeg_progressive.jpg", "jpeg/cjpeg_restart_1row.jpg",
                     "jpeg/cjpeg_sample_420.jpg", "jpeg/cjpeg_sample_422.jpg", "jpeg/cjpeg_sample_444.jpg",
                     "jpeg/pil_gray.jpg", "jpeg/cmyk_adobe.jpg", "jpeg/ycck_adobe.jpg", "png/gray1.png",
                     "png/gray2.png", "png/gray4.png", "png/gray16.png", "png/rgb16.png", "png/palette4_trns.png",
                     "png/gray_alpha16_interlaced.png", "png/rgba16_interlaced.png"] {
            #expect(files.contains(name), "missing fixture \(name)")
        }
        #expect((1...8).allSatisfy { files.contains("exif/orientation_\($0).jpg") })
    }

    @Test("EXIF orientation: switched off keeps the stored pixels, on swaps the sides for 5...8")
    func exifSwitch() throws {
        for orientation in 1...8 {
            let bytes = try Fixtures.bytes("exif/orientation_\(orientation).jpg")
            #expect(EXIFOrientation.inJPEG(bytes).rawValue == orientation)
            let stored = try ImageDecoder(exifTranspose: false).decode(bytes)
            let shown = try ImageDecoder(exifTranspose: true).decodeWithDetails(bytes)
            #expect((stored.width, stored.height) == (40, 24))
            #expect(shown.orientation.rawValue == orientation)
            #expect(orientation >= 5 ? (shown.image.width, shown.image.height) == (24, 40)
                                     : (shown.image.width, shown.image.height) == (40, 24))
        }
    }

    @Test("EXIF parsing survives malformed segments", arguments: [
        [UInt8](),
        [0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x02],
        [0xFF, 0xD8, 0xFF, 0xE1, 0xFF, 0xFF] + Array("Exif\0\0".utf8),
        [0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x10] + Array("Exif\0\0".utf8) + [0x49, 0x49, 0x2A, 0x00, 0xFF, 0xFF, 0xFF, 0x7F],
        [0xFF, 0xD8, 0xFF, 0xE1, 0x00, 0x14] + Array("Exif\0\0".utf8) + [0x4D, 0x4D, 0x00, 0x2A, 0, 0, 0, 8, 0xFF, 0xFF, 0, 0],
    ])
    func malformedEXIF(_ bytes: [UInt8]) {
        #expect(EXIFOrientation.inJPEG(bytes) == .normal)
        #expect(EXIFOrientation.inTIFF(bytes, from: min(bytes.count, 12), to: bytes.count) == .normal)
    }

    @Test("DCT scaling picks the largest 1/d with the image at least d times the target",
          arguments: [(23, 1, 67, 45), (22, 2, 34, 23), (12, 2, 34, 23), (11, 4, 17, 12), (6, 4, 17, 12), (5, 8, 9, 6)])
    func dctScaleChoice(target: Int, denominator: Int, width: Int, height: Int) throws {
        let bytes = try Fixtures.bytes("jpeg/pil_444.jpg")  // 67x45
        let decoded = try ImageDecoder().decodeWithDetails(bytes, targetShorterSide: target)
        #expect(decoded.scaleDenominator == denominator)
        #expect((decoded.image.width, decoded.image.height) == (width, height))
        #expect((decoded.image.fullWidth, decoded.image.fullHeight) == (67, 45))
        #expect(decoded.image.scaleDenominator == denominator)
    }

    @Test("sniffing uses the bytes: JPEG and PNG magic, nothing else")
    func sniff() throws {
        #expect(ImageFormat.sniff(try Fixtures.bytes("jpeg/pil_444.jpg")) == .jpeg)
        #expect(ImageFormat.sniff(try Fixtures.bytes("png/rgb8.png")) == .png)
        #expect(ImageFormat.sniff(try Fixtures.bytes("bad/image.gif")) == nil)
        #expect(ImageFormat.sniff([0xFF, 0xD8]) == nil)
        #expect(ImageFormat.sniff([]) == nil)
    }
}
