import Foundation
import Testing
@testable import CBAMImage

/// Files made to cost the server memory or time out of proportion to their size (issue 15, findings 1, 2 and 4).
/// Each is built here, byte by byte, so the test shows exactly what it sends.
@Suite("Hostile files cost nothing", .serialized)
struct HostileFileTests {
    @Test("a text chunk whose length says 2 GiB is refused without a big allocation", arguments: ["tEXt", "zTXt", "iTXt"])
    func textChunkLengthBomb(kind: String) throws {
        // A valid 1x1 gray PNG, then a chunk declaring 0x7FFFFFF0 bytes followed by only 100 (about 150 bytes).
        var file = HostilePNG.signature + HostilePNG.chunk("IHDR", HostilePNG.header(width: 1, height: 1, colourType: 0))
        file += HostilePNG.u32(0x7FFF_FFF0) + Array(kind.utf8) + [UInt8](repeating: 0x41, count: 100)
        #expect(file.count < 160)
        let peak = try PeakMemory.measure {
            #expect(throws: ImageError.self) { try ImageDecoder().decode(file) }
        }
        #expect(peak < 16 << 20, "\(kind): peak RSS grew by \(peak >> 20) MiB while refusing a \(file.count)-byte file")
        do { _ = try ImageDecoder().decode(file) } catch {
            #expect(error.code == "truncated_image", "\(kind): \(error)")
        }
    }

    @Test("an image stream that inflates far past the last row is cut off at once")
    func idatInflationBomb() throws {
        // 32x32 RGB needs 32 * (1 + 96) = 3,104 inflated bytes; this stream inflates to 128 MiB.
        let file = HostilePNG.image(width: 32, height: 32, deflate: HostilePNG.zeroBomb(inflatedBytes: 128 << 20))
        let start = ContinuousClock.now
        do {
            _ = try ImageDecoder().decode(file)
            Issue.record("a \(file.count)-byte stream inflating to 128 MiB was accepted")
        } catch {
            #expect(error.code == "image_too_complex", "\(error)")
            #expect(error.message.contains("image data is longer"), "\(error.message)")
        }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < .milliseconds(50), "refusing the bomb took \(elapsed)")
    }

    @Test("a stream with a little trailing slack still decodes")
    func idatWithinMargin() throws {
        // The rows' exact bytes in stored blocks, as an encoder without compression writes them.
        let rows = [UInt8](repeating: 0, count: 8 * (1 + 8 * 3))
        let image = try ImageDecoder().decode(HostilePNG.image(width: 8, height: 8, deflate: HostilePNG.stored(rows),
                                                               inflated: rows))
        #expect(image.width == 8 && image.height == 8 && image.pixels.allSatisfy { $0 == 0 })
    }

    @Test("a decode stops when its time budget runs out")
    func timeBudget() throws {
        let file = try Fixtures.bytes("jpeg/pil_420.jpg")
        #expect(throws: Never.self) { try ImageDecoder().decode(file, timeBudget: .seconds(10)) }
        for budget: Duration in [.zero, .nanoseconds(1)] {
            do {
                _ = try ImageDecoder().decode(file, timeBudget: budget)
                Issue.record("decoded with a budget of \(budget)")
            } catch {
                #expect(error.code == "decode_timeout", "\(error)")
            }
        }
        let rows = [UInt8](repeating: 0, count: 8 * 25)
        let png = HostilePNG.image(width: 8, height: 8, deflate: HostilePNG.stored(rows), inflated: rows)
        do { _ = try ImageDecoder().decode(png, timeBudget: .zero); Issue.record("PNG decoded with no budget") } catch {
            #expect(error.code == "decode_timeout", "\(error)")
        }
    }

    @Test("a JPEG whose frame is far larger than its scan data is a truncated file")
    func jpegFrameLargerThanScan() throws {
        var file = try Fixtures.bytes("jpeg/pil_420.jpg")
        let original = try ImageDecoder().decode(file)
        // Patch the SOF0 frame header's height and width to 6000x6000; the scan data stays the small image's.
        let sof = try #require(file.indices.first { file[$0] == 0xFF && file[$0 + 1] == 0xC0 })
        file.replaceSubrange(sof + 5..<sof + 9, with: [0x17, 0x70, 0x17, 0x70])
        let start = ContinuousClock.now
        do {
            let image = try ImageDecoder().decode(file)
            Issue.record("a \(original.width)x\(original.height) scan in a 6000x6000 frame decoded to \(image.width)x\(image.height)")
        } catch {
            #expect(error.code == "truncated_image", "\(error)")
            #expect(error.message.contains("6000x6000") && error.message.contains("premature end"), "\(error.message)")
        }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed < .milliseconds(100), "refusing it took \(elapsed)")
    }
}

/// Peak resident memory of the process while `body` runs, over what it was before (VmHWM reset through
/// /proc/self/clear_refs, Linux 4.0 and later).
enum PeakMemory {
    static func measure(_ body: () throws -> Void) throws -> Int {
        try "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
        let before = field("VmRSS")
        try body()
        return field("VmHWM") - before
    }

    private static func field(_ name: String) -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return 0
    }
}

/// Just enough PNG writing to build hostile files: chunks with their CRCs, and zlib streams made by hand.
enum HostilePNG {
    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    static func u32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    static func chunk(_ kind: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(kind.utf8) + data
        return u32(UInt32(data.count)) + body + u32(crc32(body))
    }

    /// IHDR for 8-bit samples, no interlacing.
    static func header(width: UInt32, height: UInt32, colourType: UInt8) -> [UInt8] {
        u32(width) + u32(height) + [8, colourType, 0, 0, 0]
    }

    /// An 8-bit RGB image whose IDAT holds `deflate` (a raw deflate stream of `inflated`) in a zlib wrapper.
    /// The bomb's checksum is not reached by what these tests check, so it passes `inflated: []`.
    static func image(width: UInt32, height: UInt32, deflate: [UInt8], inflated: [UInt8] = []) -> [UInt8] {
        let zlib: [UInt8] = [0x78, 0x01] + deflate + u32(adler32(inflated))
        return signature + chunk("IHDR", header(width: width, height: height, colourType: 2))
            + chunk("IDAT", zlib) + chunk("IEND", [])
    }

    /// Stored (uncompressed) deflate blocks holding `bytes`.
    static func stored(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var start = 0
        repeat {
            let n = min(65_535, bytes.count - start)
            let last: UInt8 = start + n == bytes.count ? 1 : 0
            out += [last, UInt8(n & 0xFF), UInt8(n >> 8), UInt8(~n & 0xFF), UInt8((~n >> 8) & 0xFF)]
            out += bytes[start..<start + n]
            start += n
        } while start < bytes.count
        return out
    }

    /// One fixed-Huffman block: a literal 0, then copies of 258 bytes at distance 1 (13 bits each), so about
    /// 160 inflated bytes per compressed byte.
    static func zeroBomb(inflatedBytes: Int) -> [UInt8] {
        var bits = BitWriter()
        bits.write(0b1, count: 1)              // BFINAL (never reached: the stream is cut first)
        bits.write(0b01, count: 2)             // BTYPE fixed Huffman
        bits.writeHuffman(0b0011_0000, count: 8)  // literal 0
        for _ in 0..<(inflatedBytes / 258) {
            bits.writeHuffman(0b1100_0101, count: 8)  // length code 285: 258 bytes
            bits.writeHuffman(0b00000, count: 5)       // distance code 0: distance 1
        }
        return bits.bytes
    }

    static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in bytes { a = (a + UInt32(byte)) % 65_521; b = (b + a) % 65_521 }
        return b << 16 | a
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}

/// Deflate's bit order: values least significant bit first, Huffman codes most significant bit first.
struct BitWriter {
    var bytes: [UInt8] = []
    private var used = 8

    mutating func write(_ value: UInt32, count: Int) {
        for i in 0..<count { push(value >> i & 1) }
    }

    mutating func writeHuffman(_ code: UInt32, count: Int) {
        for i in stride(from: count - 1, through: 0, by: -1) { push(code >> i & 1) }
    }

    private mutating func push(_ bit: UInt32) {
        if used == 8 { bytes.append(0); used = 0 }
        bytes[bytes.count - 1] |= UInt8(bit) << used
        used += 1
    }
}
