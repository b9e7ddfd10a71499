import Glibc

/// A compiled POSIX extended regular expression (case-insensitive by default, unanchored).
///
/// Compiled once at configuration load. `@unchecked Sendable` because the `regex_t` is never
/// mutated after `regcomp`, and glibc's `regexec` takes the pattern's own lock while it runs.
public final class POSIXRegex: @unchecked Sendable {
    /// The source pattern, for messages and traces.
    public let pattern: String
    private let compiled: UnsafeMutablePointer<regex_t>

    /// Compiles `pattern`; the error carries `regerror`'s explanation.
    public init(_ pattern: String, caseInsensitive: Bool = true) throws(RegexError) {
        // Compile into a local first: once every property is set, a throw would run deinit
        // and regfree a pattern that never compiled.
        let storage = UnsafeMutablePointer<regex_t>.allocate(capacity: 1)
        let flags = REG_EXTENDED | REG_NOSUB | (caseInsensitive ? REG_ICASE : 0)
        let status = regcomp(storage, pattern, flags)
        guard status == 0 else {
            var buffer = [CChar](repeating: 0, count: 256)
            regerror(status, storage, &buffer, buffer.count)
            storage.deallocate()
            let reason = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            throw RegexError(pattern: pattern, reason: reason)
        }
        self.pattern = pattern
        compiled = storage
    }

    deinit {
        regfree(compiled)
        compiled.deallocate()
    }

    /// Whether the pattern matches anywhere in `text`. A NUL would end the C string regexec
    /// reads and hide the rest of the text (a header value or a file name from the sender):
    /// it is read as a space, as the headers filter reads it.
    public func matches(_ text: String) -> Bool {
        // Native Swift strings are NUL-terminated UTF-8, so withCString does not copy.
        ASCII.replacing(text, where: { $0 == 0 }, with: 0x20).withCString { regexec(compiled, $0, 0, nil, 0) == 0 }
    }
}

/// A pattern `regcomp` refused.
public struct RegexError: Error, Sendable, CustomStringConvertible {
    /// The pattern as written.
    public var pattern: String
    /// `regerror`'s text.
    public var reason: String

    public var description: String { "invalid regular expression '\(pattern)': \(reason)" }
}
