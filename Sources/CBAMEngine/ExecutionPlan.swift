import Dispatch
import Foundation

/// The algorithm of each convolution of a pass, in the order the pass runs them, for one input shape and thread
/// count. It is measured, not guessed: the first pass of a new shape runs each convolution with every candidate
/// algorithm (three times each, keeping the best time) and keeps the fastest; later passes of that shape follow it.
struct ExecutionPlan {
    /// The shape a plan is for. Batches share a plan within powers of two (1, 2-3, 4-7, 8-15, ...): the best
    /// algorithm moves with the number of tiles, but not by much within a factor of two, and a service whose batches
    /// take every size up to 64 then measures 7 plans, not 64.
    struct Key: Hashable {
        /// The largest power of two not above the pass's batch.
        let batchClass: Int
        let height, width, threads: Int

        init(batch: Int, height: Int, width: Int, threads: Int) {
            precondition(batch >= 1)
            batchClass = 1 << (Int.bitWidth - 1 - batch.leadingZeroBitCount)
            (self.height, self.width, self.threads) = (height, width, threads)
        }
    }

    var algorithms: [Conv2D.Algorithm] = []

    /// Where a pass stands in its plan: the next convolution's index, or the plan being measured.
    struct Cursor {
        var plan = ExecutionPlan()
        var next = 0
        var measuring = false
    }
}

extension Workspace {
    /// Starts a pass: follows `plan`, the model's plan for the pass's shape, or measures one if there is none yet.
    func beginPass(plan: ExecutionPlan?) {
        if let plan {
            pass = .init(plan: plan, next: 0, measuring: false)
        } else {
            pass = .init(plan: ExecutionPlan(), next: 0, measuring: true)
        }
    }

    /// Ends the pass; returns the plan it measured (for the model to keep), nil when it followed one.
    func endPass() -> ExecutionPlan? {
        defer { pass.measuring = false }
        return pass.measuring ? pass.plan : nil
    }

    /// The algorithm for the pass's next convolution, measuring the candidates when the pass is measuring
    /// (`output` receives each candidate's result; they agree to rounding).
    func algorithm(for conv: Conv2D, input: FeatureMap, output: UnsafeMutablePointer<Float>) -> Conv2D.Algorithm {
        if !pass.measuring {
            precondition(pass.next < pass.plan.algorithms.count, "execution plan: more convolutions than planned")
            defer { pass.next += 1 }
            return pass.plan.algorithms[pass.next]
        }
        let candidates = conv.candidates(batch: input.batch, height: input.height, width: input.width)
        let usual = conv.defaultAlgorithm(batch: input.batch, height: input.height, width: input.width)
        var best = (algorithm: usual, nanoseconds: UInt64.max)
        if candidates.count > 1 {
            var times = [UInt64](repeating: .max, count: candidates.count)
            for _ in 0..<3 {
                for (i, candidate) in candidates.enumerated() {
                    let start = Self.clock(threads: columns.count)
                    conv(input, into: output, buffers: columns, algorithm: candidate)
                    times[i] = min(times[i], Self.clock(threads: columns.count) - start)
                }
            }
            // The usual choice stays unless another is clearly (5 %) faster: a close call is not worth a flip.
            let usualTime = times[candidates.firstIndex(of: usual) ?? 0]
            best = (usual, usualTime)
            for (candidate, time) in zip(candidates, times) where Double(time) < 0.95 * Double(usualTime) && time < best.nanoseconds {
                best = (candidate, time)
            }
        } else {
            best.algorithm = candidates[0]
        }
        pass.plan.algorithms.append(best.algorithm)
        return best.algorithm
    }
}

extension Workspace {
    /// Nanoseconds of this thread's CPU time when the convolution runs on it alone (time another process takes
    /// from this core is then not counted against an algorithm), else of wall-clock time.
    static func clock(threads: Int) -> UInt64 {
        guard threads == 1 else { return DispatchTime.now().uptimeNanoseconds }
        var t = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
        return UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_nsec)
    }
}

extension Conv2D {
    /// The convolution as its pass's plan says (measuring it first if the plan is new), timed under its kind when
    /// the workspace has a profile.
    func run(_ input: FeatureMap, into output: UnsafeMutablePointer<Float>, workspace: Workspace,
             as kind: LayerKind? = nil) -> FeatureMap {
        let algorithm = workspace.algorithm(for: self, input: input, output: output)
        return workspace.timed(kind ?? self.kind(algorithm), multiplyAdds: input.batch * multiplyAdds(height: input.height, width: input.width)) {
            self(input, into: output, buffers: workspace.columns, algorithm: algorithm)
        }
    }

    func kind(_ algorithm: Algorithm) -> LayerKind {
        switch (algorithm, kernel, stride) {
        case (.winograd2x2, _, _): .winograd2x2
        case (.winograd4x4, _, _): .winograd4x4
        case (_, 1, 1): .pointwise
        case (_, 1, _): .stridedPointwise
        case (_, 3, 1): .im2col3x3
        default: .strided3x3
        }
    }
}

extension CBAMModel {
    /// Measures now the execution plans of passes of each of `batchSizes` images of `height × width` (default: the
    /// config's input size) with the current thread count, so that no later pass of those shapes pays for it: a
    /// service calls it at start-up with its batch sizes (on the default model, batch 64 alone costs 1.6 s the first
    /// time and 0.19 s after). Runs one pass of zeros per batch size; returns the time it took.
    @discardableResult
    public func warmUp(batchSizes: some Sequence<Int>, height: Int? = nil, width: Int? = nil) throws(ModelError) -> Duration {
        let h = height ?? config.input.size, w = width ?? config.input.size
        let start = ContinuousClock.now
        for batch in batchSizes {
            guard batch >= 1 else { throw ModelError("invalid_input", "warm-up batch size must be >= 1, got \(batch)") }
            if passKeys(batch: batch, height: h, width: w).allSatisfy({ plan(for: $0) != nil }) { continue }
            let zeros = [Float](repeating: 0, count: batch * 3 * h * w)
            _ = try forward(zeros, batch: batch, height: h, width: w, attention: false)
        }
        return ContinuousClock.now - start
    }
}
