import ArgumentParser
import CBAMEngine
import Foundation

/// Times forward passes of the engine on one model; tools/bench_engine.py runs it beside PyTorch and ONNX Runtime.
/// Prints one JSON object: {"model", "batch", "height", "width", "threads", "times_ms": [...], "median_ms", "min_ms"}.
/// With `--core-probe` (no model), {"threads", "gflops": [...], "round_trip_ns"}: each thread's multiply-add rate
/// with all of them running at once (whether the host gave each thread a core of its own at that moment) and, with
/// two or more threads, a cache line's round trip between two of them (how far apart those cores are).
@main
struct CBAMBench: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "cbam-bench",
                                                    abstract: "Time the CBAM engine's forward pass on random input.")

    @Option(help: "Model directory.") var model: String?
    @Option(help: "Images per forward pass.") var batch = 1
    @Option(help: "Input height and width (default: the config's input size).") var size: Int?
    @Option(help: "Threads a forward pass may use (default: the number of cores; OpenBLAS itself runs on one).") var threads: Int?
    @Option(help: "Untimed passes first.") var warmup = 3
    @Option(help: "Timed passes.") var iterations = 20
    @Flag(help: "Also return the attention maps.") var attention = false
    @Option(help: "Run on this .npy input instead of random values and print its logits.") var input: String?
    @Flag(help: ArgumentHelp("Print the time per layer kind and its GFLOP/s against a 1024³ sgemm and the core's "
                             + "multiply-add peak, both timed in the same run."))
    var profile = false
    @Flag(help: ArgumentHelp("Instead of a model, run the multiply-add chains on --threads threads at once and print "
                             + "each one's GFLOP/s (about half of one core's peak: two threads on one physical core), "
                             + "and a cache line's round trip between two threads in ns."))
    var coreProbe = false

    func validate() throws {
        if model == nil && !coreProbe { throw ValidationError("--model is required (unless --core-probe)") }
    }

    func run() throws {
        if let threads { BLASThreads.set(threads) }
        guard let model else {
            let rates = measureConcurrentFMA(threads: BLASThreads.count)
            let trip = rates.count > 1 ? String(format: ", \"round_trip_ns\": %.0f", measureRoundTrip()) : ""
            print("{\"threads\": \(rates.count), \"gflops\": [\(rates.map { String(format: "%.1f", $0) }.joined(separator: ", "))]\(trip)}")
            return
        }
        let network = try CBAMModel.load(directory: URL(fileURLWithPath: model))
        var (n, h, w) = (batch, size ?? network.config.input.size, size ?? network.config.input.size)
        if profile {
            printProfile(network.profile(batch: n, height: h, width: w, iterations: iterations), sgemm: measureSGEMM(),
                         fma: measureFMAPeak(), model: network.config.name, batch: n, height: h, width: w)
            return
        }
        var values: [Float]
        if let input {
            let array = try NPY.read(contentsOf: URL(fileURLWithPath: input))
            (n, h, w) = (array.shape[0], array.shape[2], array.shape[3])
            values = array.values
        } else {
            var state: UInt64 = 0x2018
            values = (0..<(n * 3 * h * w)).map { _ in
                state = state &* 6364136223846793005 &+ 1442695040888963407
                return Float(Int64(bitPattern: state) >> 40) / Float(1 << 23)
            }
        }
        var result: ForwardResult?
        for _ in 0..<warmup { result = try network.forward(values, batch: n, height: h, width: w, attention: attention) }
        var times: [Double] = [], cpuTimes: [Double] = []
        for _ in 0..<iterations {
            // The CPU clock is read inside the wall-clock interval at both ends, so that its own system call is not
            // counted as CPU time beyond the wall time (0.1 % of a 2 ms pass when it was read last).
            let start = DispatchTime.now().uptimeNanoseconds, cpuStart = Self.processCPUTime()
            result = try network.forward(values, batch: n, height: h, width: w, attention: attention)
            let cpuEnd = Self.processCPUTime(), end = DispatchTime.now().uptimeNanoseconds
            times.append(Double(end - start) / 1e6)
            cpuTimes.append((cpuEnd - cpuStart) * 1e3)
        }
        let sorted = times.sorted()
        let median = Self.median(times)
        var fields = ["\"model\": \"\(network.config.name)\"", "\"batch\": \(n)", "\"height\": \(h)", "\"width\": \(w)",
                      "\"threads\": \(BLASThreads.count)", "\"median_ms\": \(median)", "\"min_ms\": \(sorted.first ?? 0)",
                      "\"cpu_median_ms\": \(Self.median(cpuTimes))", "\"cpu_min_ms\": \(cpuTimes.min() ?? 0)",
                      "\"times_ms\": [\(times.map { String($0) }.joined(separator: ", "))]",
                      "\"cpu_times_ms\": [\(cpuTimes.map { String($0) }.joined(separator: ", "))]"]
        if input != nil, let result { fields.append("\"logits\": [\(result.logits.map { String($0) }.joined(separator: ", "))]") }
        print("{" + fields.joined(separator: ", ") + "}")
    }

    func printProfile(_ layers: [LayerTime], sgemm: Double, fma: Double, model: String, batch: Int, height: Int,
                      width: Int) {
        let total = layers.reduce(0) { $0 + $1.milliseconds }
        // Both references are one thread's: at more threads the shares run past 100 %.
        print("\(model), \(batch)x3x\(height)x\(width), \(BLASThreads.count) thread(s), mean of \(iterations) passes: "
              + "\(String(format: "%.2f", total)) ms; GEMM kernel: \(GEMMKernel.instructionSet); on one thread, sgemm 1024³ "
              + "\(String(format: "%.1f", sgemm)) GFLOP/s, multiply-add peak \(String(format: "%.1f", fma)) GFLOP/s\n")
        print("| layer kind | ms | share | GFLOP/s (direct-equivalent) | of sgemm | of multiply-add peak |")
        print("|---|---:|---:|---:|---:|---:|")
        for layer in layers {
            let rated = layer.multiplyAdds > 0
            let rate = rated ? String(format: "%.1f", layer.gigaflops) : "-"
            let ofSGEMM = rated ? String(format: "%.0f %%", 100 * layer.gigaflops / sgemm) : "-"
            let ofPeak = rated ? String(format: "%.0f %%", 100 * layer.gigaflops / fma) : "-"
            print("| \(layer.kind.rawValue) | \(String(format: "%.3f", layer.milliseconds)) | "
                  + "\(String(format: "%.1f %%", 100 * layer.milliseconds / total)) | \(rate) | \(ofSGEMM) | \(ofPeak) |")
        }
    }

    static func median(_ values: [Double]) -> Double {
        let s = values.sorted()
        return s.isEmpty ? 0 : (s[(s.count - 1) / 2] + s[s.count / 2]) / 2
    }

    /// CPU seconds used by the whole process (all threads), so a loaded machine's waiting is not counted.
    static func processCPUTime() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}
