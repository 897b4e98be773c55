import Foundation

/// `config.json`'s `rename`: `[regex, replacement]` rules applied in order to every tensor name of a checkpoint
/// before layout detection, so a checkpoint in an unusual layout loads without converting its file.
struct RenameMap {
    private let rules: [(pattern: NSRegularExpression, source: String, replacement: String)]

    init(_ rules: [[String]]?) throws(ModelError) {
        var compiled: [(NSRegularExpression, String, String)] = []
        for (i, rule) in (rules ?? []).enumerated() {
            guard rule.count == 2 else { throw .invalidConfig("rename[\(i)] has \(rule.count) strings, expected [regex, replacement]") }
            do { compiled.append((try NSRegularExpression(pattern: rule[0]), rule[0], rule[1])) } catch {
                throw .invalidConfig("rename[\(i)]: \"\(rule[0])\" is not a valid regular expression")
            }
        }
        self.rules = compiled
    }

    var isEmpty: Bool { rules.isEmpty }

    func apply(_ name: String) -> String {
        rules.reduce(name) { name, rule in
            rule.pattern.stringByReplacingMatches(in: name, range: NSRange(name.startIndex..., in: name), withTemplate: rule.replacement)
        }
    }

    /// Renamed name → name in the file; two names renamed to one is an error that names both.
    func map(_ names: [String]) throws(ModelError) -> [String: String] {
        var result: [String: String] = [:]
        for name in names.sorted() {
            let renamed = apply(name)
            if let other = result[renamed] {
                throw ModelError("rename_collision", "the rename rules map both \(other) and \(name) to \(renamed)")
            }
            result[renamed] = name
        }
        return result
    }
}
