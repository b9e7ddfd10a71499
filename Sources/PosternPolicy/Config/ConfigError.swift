/// One problem in a configuration file, printed as `file:line:column: message` like a compiler,
/// so editors can jump to it. `line` 0 means the whole file (it could not be read).
public struct ConfigError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The configuration file (or a lookup file it names).
    public var file: String
    /// 1-based physical line.
    public var line: Int
    /// 1-based column of the offending token, counted in Unicode scalars.
    public var column: Int
    /// What is wrong, in words an administrator understands.
    public var message: String

    /// Creates an error at a position.
    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)"
    }
}

/// Every problem found in one configuration load; a bad file is refused as a whole.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    /// The problems, in file order.
    public var errors: [ConfigError]

    /// Collects `errors`, sorting them by position so the output reads top to bottom.
    public init(_ errors: [ConfigError]) {
        self.errors = errors.enumerated().sorted { left, right in
            let (l, r) = (left.element, right.element)
            if l.file != r.file { return left.offset < right.offset }
            return (l.line, l.column, left.offset) < (r.line, r.column, right.offset)
        }.map(\.element)
    }

    /// One error per line.
    public var description: String { errors.map(\.description).joined(separator: "\n") }
}
