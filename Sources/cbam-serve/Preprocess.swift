import ArgumentParser

struct Preprocess: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Not built yet.")
    func run() async throws { throw ValidationError("'preprocess' is not built yet") }
}
