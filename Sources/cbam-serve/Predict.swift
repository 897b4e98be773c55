import ArgumentParser

struct Predict: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Not built yet.")
    func run() async throws { throw ValidationError("'predict' is not built yet") }
}
