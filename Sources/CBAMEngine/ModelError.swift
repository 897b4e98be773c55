/// Why a model could not be loaded or run: a stable code for programs and a sentence for people.
public struct ModelError: Error, CustomStringConvertible, Sendable, Equatable {
    public let code: String
    public let message: String

    public init(_ code: String, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func invalidConfig(_ message: String) -> ModelError { ModelError("invalid_config", message) }
}
