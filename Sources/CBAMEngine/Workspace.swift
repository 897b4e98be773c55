/// The buffers one forward pass works in, allocated once and reused; they grow only when a larger
/// batch or input size needs more room. Owned by one model and used by one pass at a time.
// @unchecked: mutable, but only ever used by the one pass that borrowed it from the model's pool (under its Mutex).
final class Workspace: @unchecked Sendable {
    /// Activation buffers a residual block rotates through (input, two intermediates, output).
    private(set) var activations: [UnsafeMutablePointer<Float>] = []
    /// One buffer per thread the pass's convolutions run on: its im2col tile (also the strided gather of 1x1
    /// stride-2 convolutions) or its Winograd block. The first `threads` of `columnBuffers`.
    private(set) var columns: [UnsafeMutablePointer<Float>]
    /// Every column buffer allocated so far: a pass on fewer threads than an earlier one uses some of them.
    private var columnBuffers: [UnsafeMutablePointer<Float>]
    /// Small per-image vectors: CBAM pools, MLP activations, attention maps, pooled features, logits.
    private(set) var scratch: UnsafeMutablePointer<Float>

    private(set) var activationCapacity = 0
    private(set) var columnCapacity = 0
    private(set) var scratchCapacity = 0
    /// The execution plan of the pass under way (the model keeps the plans of the shapes it has run).
    var pass = ExecutionPlan.Cursor()
    /// Where `CBAMModel.profile` collects the time per layer kind; nil otherwise.
    var profile: LayerProfile?
    /// How many times the buffers were (re)allocated; tests use it to check steady state allocates nothing.
    private(set) var allocations = 0

    static let activationBufferCount = 4

    init() {
        activations = (0..<Self.activationBufferCount).map { _ in UnsafeMutablePointer<Float>.allocate(capacity: 1) }
        columnBuffers = [.allocate(capacity: 1)]
        columns = columnBuffers
        scratch = .allocate(capacity: 1)
    }

    deinit {
        activations.forEach { $0.deallocate() }
        columnBuffers.forEach { $0.deallocate() }
        scratch.deallocate()
    }

    /// Makes sure each buffer holds at least the given number of floats, with `threads` column buffers.
    func reserve(activation: Int, columns columnCount: Int, threads: Int, scratch scratchCount: Int) {
        if activation > activationCapacity {
            for i in activations.indices {
                activations[i].deallocate()
                activations[i] = .allocate(capacity: activation)
            }
            activationCapacity = activation
            allocations += 1
        }
        if columnCount > columnCapacity || threads > columnBuffers.count {
            let count = max(threads, columnBuffers.count)
            columnBuffers.forEach { $0.deallocate() }
            columnBuffers = (0..<count).map { _ in .allocate(capacity: max(columnCount, columnCapacity)) }
            columnCapacity = max(columnCount, columnCapacity)
            allocations += 1
        }
        columns = Array(columnBuffers.prefix(threads))
        if scratchCount > scratchCapacity {
            scratch.deallocate()
            scratch = .allocate(capacity: scratchCount)
            scratchCapacity = scratchCount
            allocations += 1
        }
    }
}
