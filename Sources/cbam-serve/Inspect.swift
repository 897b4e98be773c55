import ArgumentParser

struct Inspect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Not built yet.")
    func run() async throws { throw ValidationError("'inspect' is not built yet") }
}
