import Foundation
import Testing
@testable import CBAMEngine

/// A parity case written by tools/make_engine_fixtures.py: a model directory plus input and PyTorch's outputs.
struct ParityFixture {
    let directory: URL
    let input: NPYArray
    let expected: SafeTensors
    let reference: Reference

    struct Reference: Decodable {
        let parameters: Int
        let multiplyAdds: Int
        enum CodingKeys: String, CodingKey { case parameters, multiplyAdds = "multiply_adds" }
    }

    static let names = ["bottleneck_imagenet", "basic_cifar_selective", "authors_module_prefix"] + layoutNames
    /// Written with timm and the ca/sa structure by tools/make_layout_fixtures.py (issue 18).
    static let layoutNames = ["timm_seresnet", "timm_ecaresnet_deep_avgdown", "timm_cbam_resnet", "casa_cbam_resnet18",
                              "renamed_seresnet"]

    static func directory(_ name: String) -> URL {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures").appendingPathComponent(name)
    }

    init(_ name: String) throws { try self.init(directory: Self.directory(name)) }

    init(directory: URL) throws {
        self.directory = directory
        input = try NPY.read(contentsOf: directory.appendingPathComponent("input.npy"))
        expected = try SafeTensors(contentsOf: directory.appendingPathComponent("expected.safetensors"))
        reference = try JSONDecoder().decode(Reference.self, from: Data(contentsOf: directory.appendingPathComponent("reference.json")))
    }

    var batch: Int { input.shape[0] }
    var height: Int { input.shape[2] }
    var width: Int { input.shape[3] }
}

func maxAbsDifference(_ a: some Collection<Float>, _ b: some Collection<Float>) -> Float {
    precondition(a.count == b.count, "lengths differ: \(a.count) vs \(b.count)")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Uniform values in [-1, 1) from a fixed-seed generator, so kernel tests are reproducible.
struct SeededValues {
    private var state: UInt64
    init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> Float {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Float(state >> 40) / Float(1 << 23) - 1
    }
    mutating func array(_ count: Int) -> [Float] { (0..<count).map { _ in next() } }
}
