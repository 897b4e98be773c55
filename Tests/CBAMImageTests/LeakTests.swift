import Testing
@testable import CBAMImage

@Suite("Error paths do not leak", .serialized)
struct LeakTests {
    /// Each file fails after libjpeg/libpng allocated (decoder state, tables, row buffers). RSS is process-wide
    /// and other tests run in parallel in this process, so growth is measured over four windows of 2,500
    /// failures and the quietest window must stay under 1 MiB: a leak of 400 bytes or more per failure grows
    /// every window past that, while another test's allocations rarely land in all four.
    /// (valgrind over the same files is clean: see Fixtures/README.md.)
    @Test("10,000 failing decodes per truncated/corrupt JPEG and PNG keep RSS flat")
    func failingDecodesKeepMemoryFlat() throws {
        let files = ["bad/truncated_baseline.jpg", "bad/truncated_progressive.jpg", "bad/bad_huffman_table.jpg",
                     "bad/many_scans.jpg", "bad/truncated.png", "bad/idat_crc.png"]
        var limits = ImageLimits.default
        limits.maxScans = 3
        let decoder = ImageDecoder(limits: limits)
        for file in files {
            let bytes = try Fixtures.bytes(file)
            for _ in 0..<500 { #expect(throws: ImageError.self) { try decoder.decode(bytes) } }  // warm caches
            var growth = [Int]()
            for _ in 0..<4 {
                let before = residentBytes()
                for _ in 0..<2_500 { _ = try? decoder.decode(bytes) }
                growth.append(residentBytes() - before)
            }
            #expect(growth.min()! < 1 << 20, "\(file): RSS grew by \(growth) bytes per 2,500 failing decodes")
        }
    }
}
