/// Where the CLI looks for a model when `--model` is not given (relative to the working directory).
enum ModelDirectory {
    static let defaultPath = "models/cbam-resnet20-cifar10"
}
