import Foundation
import Testing
@testable import CBAMEngine

@Suite struct NPYTests {
    @Test func readsAFileWrittenByNumPy() throws {
        let array = try NPY.read(contentsOf: ParityFixture.directory("bottleneck_imagenet").appendingPathComponent("input.npy"))
        #expect(array.shape == [2, 3, 97, 97])
        #expect(array.values.count == 2 * 3 * 97 * 97)
        #expect(array.values.allSatisfy { $0.isFinite } && Set(array.values).count > 1000)
    }

    @Test(arguments: [[2, 3, 4, 5], [7], [], [1, 0, 3]])
    func roundTrips(_ shape: [Int]) throws {
        var rng = SeededValues(seed: 3)
        let array = NPYArray(shape: shape, values: rng.array(shape.reduce(1, *)))
        let bytes = NPY.encode(array)
        #expect(bytes.count % 64 == (array.values.count * 4) % 64, "header padded to 64 bytes")
        #expect(try NPY.decode(bytes) == array)
    }

    @Test func rejectsWhatItCannotRead() {
        func code(_ bytes: [UInt8]) -> String? {
            do { _ = try NPY.decode(bytes, name: "x.npy"); return nil } catch { return error.code + ": " + error.message }
        }
        #expect(code(Array("hello world".utf8))?.hasPrefix("invalid_npy: x.npy: not a .npy file") == true)
        let good = NPY.encode(NPYArray(shape: [2, 2], values: [1, 2, 3, 4]))
        #expect(code(Array(good.dropLast(4)))?.contains("needs 16 bytes") == true)
        func header(_ dict: String) -> [UInt8] {
            var h = Array(dict.utf8); h.append(0x0A)
            return [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0, UInt8(h.count), 0] + h + [UInt8](repeating: 0, count: 32)
        }
        #expect(code(header("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }"))?.contains("float32") == true)
        #expect(code(header("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 4), }"))?.contains("Fortran") == true)
        #expect(code(header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }")) == nil)
    }
}
