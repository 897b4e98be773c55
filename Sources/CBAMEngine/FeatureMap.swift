/// A view of a batch of feature maps in the engine's internal layout, channel-major `[C, N, H, W]`:
/// each channel holds the N images one after another, so a convolution over the whole batch is one GEMM
/// (`[Cout, Cin·k·k] × [Cin·k·k, N·H·W]`). For a batch of one this is the same as NCHW.
struct FeatureMap {
    let data: UnsafeMutablePointer<Float>
    let channels: Int
    let batch: Int
    let height: Int
    let width: Int

    var pixels: Int { height * width }
    /// Elements of one channel across the batch: N·H·W.
    var plane: Int { batch * height * width }
    var count: Int { channels * plane }
}
