import Testing
@testable import CBAMImage

@Suite("Error paths do not leak", .serialized)
struct LeakTests {
    /// Each file fails after libjpeg/libpng allocated (tables, a pixel buffer, a row buffer). RSS is process-wide
    /// and other suites run in parallel, so the bar is 8 MiB over 10,000 failures: it catches any leak of
    /// 1 KiB or more per failure (a leaked pixel buffer here is 9 KiB, a libjpeg decoder far more).
    @Test("10,000 failing decodes each of truncated/corrupt JPEG and PNG keep RSS flat")
    func failingDecodesKeepMemoryFlat() throws {
        let files = ["bad/truncated_baseline.jpg", "bad/truncated_progressive.jpg", "bad/bad_huffman_table.jpg",
                     "bad/many_scans.jpg", "bad/truncated.png", "bad/idat_crc.png"]
        var limits = ImageLimits.default
        limits.maxScans = 3
        let decoder = ImageDecoder(limits: limits)
        for file in files {
            let bytes = try Fixtures.bytes(file)
            for _ in 0..<500 { _ = try? decoder.decode(bytes) }  // warm up allocator caches
            let before = residentBytes()
            for _ in 0..<10_000 { _ = try? decoder.decode(bytes) }
            let grown = residentBytes() - before
            #expect(grown < 8 << 20, "\(file): RSS grew by \(grown) bytes over 10,000 failing decodes")
        }
    }
}
