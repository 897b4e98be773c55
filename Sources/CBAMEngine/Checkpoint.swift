/// The tensors of a PyTorch `state_dict`, as the model asks for them by name and shape.
/// A `module.` prefix (DataParallel) is stripped, then the config's rename rules are applied, and
/// `num_batches_tracked` ignored; every other tensor
/// must be asked for exactly once with the right shape, so nothing is silently skipped.
final class Checkpoint {
    private let file: SafeTensors
    /// Name without `module.` → name in the file.
    private let storedNames: [String: String]
    private var used: Set<String> = []
    /// Elements of the tensors read so far that are trainable parameters (not BN running statistics).
    private(set) var parameterCount = 0

    init(_ file: SafeTensors, rename: RenameMap? = nil) throws(ModelError) {
        self.file = file
        let stored = file.entries.keys.filter { !$0.hasSuffix("num_batches_tracked") }
        let prefixed = !stored.isEmpty && stored.allSatisfy { $0.hasPrefix("module.") }
        let stripped = Dictionary(uniqueKeysWithValues: stored.map { (prefixed ? String($0.dropFirst(7)) : $0, $0) })
        guard let rename, !rename.isEmpty else {
            storedNames = stripped
            return
        }
        storedNames = try rename.map(Array(stripped.keys)).mapValues { stripped[$0]! }
    }

    /// Every name in the checkpoint (prefix stripped).
    var names: [String] { storedNames.keys.sorted() }

    func contains(_ name: String) -> Bool { storedNames[name] != nil }

    func shape(of name: String) -> [Int]? { storedNames[name].flatMap { file.entries[$0]?.shape } }

    /// The values of `name`, which must exist with exactly `shape`.
    func tensor(_ name: String, shape: [Int]) throws(ModelError) -> [Float] {
        guard let stored = storedNames[name], let entry = file.entries[stored] else {
            throw ModelError("missing_tensor", "checkpoint is missing tensor \(name) (config expects shape \(Self.format(shape)))")
        }
        guard entry.shape == shape else {
            throw ModelError("shape_mismatch", "tensor \(name) has shape \(Self.format(entry.shape)), config expects \(Self.format(shape))")
        }
        used.insert(name)
        if !name.hasSuffix("running_mean") && !name.hasSuffix("running_var") { parameterCount += entry.count }
        return try file.floats(stored)
    }

    /// The values of `name` if the checkpoint has it (with exactly `shape`), else nil.
    func optionalTensor(_ name: String, shape: [Int]) throws(ModelError) -> [Float]? {
        contains(name) ? try tensor(name, shape: shape) : nil
    }

    /// Fails if any tensor was never asked for.
    func checkAllUsed() throws(ModelError) {
        let unused = names.filter { !used.contains($0) }
        guard let first = unused.first else { return }
        let more = unused.count > 1 ? " (and \(unused.count - 1) more: \(unused.dropFirst().prefix(5).joined(separator: ", "))\(unused.count > 6 ? ", ..." : ""))" : ""
        throw ModelError("unexpected_tensor",
                         "checkpoint has unexpected tensor \(first) with shape \(Self.format(shape(of: first) ?? [])), which the config does not describe\(more)")
    }

    static func format(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ",") + "]" }
}
