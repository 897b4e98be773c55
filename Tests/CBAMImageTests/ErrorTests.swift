import Foundation
import Testing
@testable import CBAMImage

@Suite("Bad files become typed errors")
struct ErrorTests {
    @Test("every bad fixture gives its code and a message", arguments: Fixtures.manifest.errors)
    func refused(_ fixture: Fixtures.ErrorCase) throws {
        let bytes = try Fixtures.bytes(fixture.file)
        var limits = ImageLimits.default
        if let scans = fixture.max_scans { limits.maxScans = scans }
        do {
            let image = try ImageDecoder(limits: limits).decode(bytes)
            Issue.record("\(fixture.file) (\(fixture.note)) decoded to \(image.width)x\(image.height); expected \(fixture.code)")
        } catch {
            #expect(error.code == fixture.code, "\(fixture.file) (\(fixture.note)): \(error)")
            #expect(!error.message.isEmpty)
        }
    }

    @Test("messages say what was found", arguments: [("bad/image.gif", "GIF"), ("bad/image.webp", "WebP"),
                                                     ("bad/image.bmp", "BMP"), ("bad/image.tiff", "TIFF"),
                                                     ("bad/text.jpg", "text"), ("bad/bomb_40000x40000.png", "40000x40000"),
                                                     ("bad/truncated.png", "truncated")])
    func messages(file: String, mentions: String) throws {
        let bytes = try Fixtures.bytes(file)
        do { _ = try ImageDecoder().decode(bytes) } catch {
            #expect(error.message.contains(mentions), "\(file): \(error.message)")
            return
        }
        Issue.record("\(file) decoded")
    }

    @Test("a cut-off signature is a truncated file; other short input is not an image",
          arguments: [([0xFF], "truncated_image"), ([0xFF, 0xD8], "truncated_image"), ([0x89, 0x50, 0x4E], "truncated_image"),
                      ([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A], "truncated_image"), ([0x00], "unsupported_format"),
                      ([0xFF, 0xD8, 0x00, 0x00], "unsupported_format"), ([0x89, 0x50, 0x4E, 0x48], "unsupported_format")])
    func shortInput(bytes: [UInt8], code: String) {
        do { _ = try ImageDecoder().decode(bytes) } catch { #expect(error.code == code, "\(bytes): \(error)") }
    }

    @Test("a file claiming 40000x40000 is refused at once, with no big allocation")
    func bombRefusedQuickly() throws {
        for file in ["bad/bomb_40000x40000.jpg", "bad/bomb_40000x40000.png"] {
            let bytes = try Fixtures.bytes(file)
            let before = residentBytes()
            let start = ContinuousClock.now
            for _ in 0..<100 {
                #expect(throws: ImageError.self) { try ImageDecoder().decode(bytes) }
            }
            let elapsed = ContinuousClock.now - start
            #expect(elapsed < .milliseconds(500), "\(file): 100 refusals took \(elapsed)")
            #expect(residentBytes() - before < 64 << 20, "\(file): RSS grew")
            do { _ = try ImageDecoder().decode(bytes) } catch {
                #expect(error.code == "image_too_large")
                #expect(error.message.contains("40000x40000"), "\(error.message)")
            }
        }
    }

    @Test("limits are configurable: a 67x45 image is refused under a 1000-pixel or 40-side limit")
    func customLimits() throws {
        let bytes = try Fixtures.bytes("jpeg/pil_444.jpg")
        let png = try Fixtures.bytes("png/rgb8.png")
        for data in [bytes, png] {
            for limits in [ImageLimits(maxPixels: 1000), ImageLimits(maxSide: 40)] {
                do {
                    _ = try ImageDecoder(limits: limits).decode(data)
                    Issue.record("decoded past \(limits)")
                } catch { #expect(error.code == "image_too_large") }
            }
        }
    }

    @Test("random corruption of valid files never crashes: decode succeeds or gives a known code")
    func fuzzedFiles() throws {
        let known: Set = ["corrupt_image", "truncated_image", "image_too_large", "unsupported_format",
                          "unsupported_image", "image_too_complex", "empty_image"]
        var generator = SplitMix64(seed: 42)
        for file in ["jpeg/pil_420.jpg", "jpeg/cjpeg_progressive.jpg", "jpeg/cjpeg_arithmetic.jpg",
                     "png/rgb8.png", "png/palette4_trns_interlaced.png"] {
            let original = try Fixtures.bytes(file)
            for _ in 0..<150 {
                var bytes = original
                for _ in 0..<(1 + Int(generator.next() % 8)) {
                    let at = Int(generator.next() % UInt64(bytes.count - 3)) + 3
                    bytes[at] = UInt8(truncatingIfNeeded: generator.next())
                }
                if generator.next() % 4 == 0 { bytes.removeLast(Int(generator.next() % UInt64(bytes.count / 2))) }
                do { _ = try ImageDecoder().decode(bytes) } catch {
                    #expect(known.contains(error.code), "\(file): unexpected code \(error)")
                }
            }
        }
    }
}

struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E3779B97F4A7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
}
