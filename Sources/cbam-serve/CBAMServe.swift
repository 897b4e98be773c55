import ArgumentParser

@main
struct CBAMServe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cbam-serve",
        abstract: "Serve CBAM-ResNet image classifiers over HTTP, with their attention maps.",
        subcommands: [Inspect.self, Predict.self, Preprocess.self, Serve.self]
    )
}
