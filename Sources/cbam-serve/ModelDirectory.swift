/// Where the CLI looks for a model when `--model` / `CBAM_MODEL` is not given (relative to the working directory).
enum ModelDirectory {
    static let defaultPath = "models/cbam-resnet10-cifar10"
}
