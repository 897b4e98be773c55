import Foundation

/// A class index with a score (a probability or a logit).
public struct ClassScore: Sendable, Equatable {
    public let index: Int
    public let score: Float
    public init(index: Int, score: Float) { self.index = index; self.score = score }
}

/// `exp(x_i − max x) / Σ exp(x_j − max x)`, stable for large logits.
public func softmax<C: Collection>(_ logits: C) -> [Float] where C.Element == Float {
    guard let top = logits.max() else { return [] }
    let exps = logits.map { Foundation.exp($0 - top) }
    let total = exps.reduce(0, +)
    return exps.map { $0 / total }
}

/// The `k` largest values with their indices, largest first; ties keep the lower index first.
public func topK(_ values: [Float], k: Int) -> [ClassScore] {
    let k = min(max(k, 0), values.count)
    guard k > 0 else { return [] }
    var best: [ClassScore] = []
    best.reserveCapacity(k + 1)
    for (i, v) in values.enumerated() {
        if best.count == k, let last = best.last, !(v > last.score) { continue }
        // Insert after every entry that is >= v, so equal values stay in index order.
        let position = best.firstIndex { v > $0.score } ?? best.count
        best.insert(ClassScore(index: i, score: v), at: position)
        if best.count > k { best.removeLast() }
    }
    return best
}
