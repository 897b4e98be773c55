/// Where the CLI looks for a model when `--model` / `CBAM_MODEL` is not given.
enum ModelDirectory {
    static let defaultPath = "models/cbam-resnet20-cifar10"
}
