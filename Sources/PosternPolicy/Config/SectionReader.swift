import PosternUtil
/// Reads typed values out of a ``RawSection`` and collects errors with their positions.
///
/// Core sections use it, and so can plug-ins for their own sections:
/// ```swift
/// var reader = SectionReader(config.sections["clamav"], name: "ClamAV", file: config.path)
/// let timeout = reader.duration("Timeout") ?? .seconds(30)
/// reader.reportUnknownKeys()
/// if !reader.errors.isEmpty { throw ConfigErrors(reader.errors) }
/// ```
/// Every getter returns nil when the key is absent *or* invalid (the error is recorded), so
/// `?? default` gives the default in both cases and the load is refused as a whole anyway.
public struct SectionReader: Sendable {
    /// The section, empty when it was not written.
    public let section: RawSection
    /// The name used in messages, e.g. `Receiver`.
    public let name: String
    /// The file, for messages.
    public let file: String
    /// Problems found so far.
    public private(set) var errors: [ConfigError] = []
    /// Things that work, but not as the administrator may think (`posternctl config check`
    /// prints them, the daemons log them; the file is still accepted).
    public private(set) var warnings: [ConfigError] = []
    package var consumed: Set<String> = []

    /// Reads `section` (nil when the file has no such section).
    public init(_ section: RawSection?, name: String, file: String) {
        self.section = section ?? RawSection(name: name, line: 0)
        self.name = name
        self.file = file
    }

    /// The single occurrence of a scalar key; a repeat is the error "duplicate key".
    public mutating func value(_ key: String) -> RawValue? {
        guard let raw = use(key) else { return nil }
        for repeated in raw.values.dropFirst() {
            report(line: repeated.line, column: repeated.keyColumn, "duplicate key '\(repeated.key)' in [\(name)]")
        }
        return raw.values.first
    }

    /// Marks `key` as known and returns all its occurrences.
    package mutating func use(_ key: String) -> RawKey? {
        let lowered = ASCII.lowercased(key)
        consumed.insert(lowered)
        return section.keys[lowered]
    }

    /// A string as written (quotes removed).
    public mutating func string(_ key: String) -> String? {
        value(key)?.text
    }

    /// A string where an empty value means "not set".
    public mutating func optionalString(_ key: String) -> String? {
        guard let text = string(key), !text.isEmpty else { return nil }
        return text
    }

    /// `yes`/`no`, `true`/`false`, `on`/`off`.
    public mutating func bool(_ key: String) -> Bool? {
        parse(key, expecting: "yes or no", ValueSyntax.parseBool)
    }

    /// A size such as `10m`, at least 1 byte.
    public mutating func size(_ key: String) -> Int? {
        parse(key, expecting: "a size such as 10m, 400k, 1g or a number of bytes") {
            ValueSyntax.parseSize($0).flatMap { $0 > 0 ? $0 : nil }
        }
    }

    /// A decimal integer in `range`.
    public mutating func integer(_ key: String, in range: ClosedRange<Int>) -> Int? {
        let upper = range.upperBound == .max ? "" : " to \(range.upperBound)"
        return parse(key, expecting: "a number from \(range.lowerBound)\(upper)") {
            $0.utf8.allSatisfy(ASCII.isDigit) ? Int($0).flatMap { range.contains($0) ? $0 : nil } : nil
        }
    }

    /// A percentage from 0 to 100, written `80%` or `80`.
    public mutating func percentage(_ key: String) -> Int? {
        parse(key, expecting: "a percentage from 0% to 100%") { text in
            let digits = text.hasSuffix("%") ? String(text.dropLast()) : text
            guard !digits.isEmpty, digits.utf8.allSatisfy(ASCII.isDigit), let n = Int(digits), n <= 100 else { return nil }
            return n
        }
    }

    /// A positive time such as `30s`, `5m`, `2h`, `1d`, `500ms`.
    public mutating func duration(_ key: String) -> Duration? {
        parse(key, expecting: "a time such as 30s, 5m, 2h, 1d or 500ms") {
            ValueSyntax.parseDuration($0).flatMap { $0 > .zero ? $0 : nil }
        }
    }

    /// A time such as `4h`, or `0` for "off" (``Duration/zero``).
    public mutating func durationOrOff(_ key: String) -> Duration? {
        parse(key, expecting: "a time such as 30s, 5m, 2h, 1d, or 0 for off", ValueSyntax.parseDuration)
    }

    /// An address such as `inet:25@127.0.0.1`.
    public mutating func endpoint(_ key: String) -> Endpoint? {
        guard let raw = value(key) else { return nil }
        do throws(EndpointError) {
            return try Endpoint.parse(raw.text)
        } catch {
            report(line: raw.line, column: raw.column + error.offset, error.description)
            return nil
        }
    }

    /// An action list such as `tempfail` or `reject, quarantine`.
    public mutating func actions(_ key: String) -> ActionList? {
        guard let raw = value(key) else { return nil }
        do throws(ActionError) {
            return try ActionList.parse(raw.text)
        } catch {
            report(line: raw.line, column: raw.column + error.offset, error.description)
            return nil
        }
    }

    /// Reports every key no getter asked for as "unknown key"; call after reading.
    public mutating func reportUnknownKeys() {
        for key in section.order where !consumed.contains(key) {
            for raw in section.keys[key]!.values {
                report(line: raw.line, column: raw.keyColumn, "unknown key '\(raw.key)' in [\(name)]")
            }
        }
    }

    /// Records a warning at a position of this section's file.
    public mutating func warn(line: Int, column: Int, _ message: String) {
        warnings.append(ConfigError(file: file, line: line, column: column, message: message))
    }

    /// Records an error at a position of this section's file.
    public mutating func report(line: Int, column: Int, _ message: String) {
        errors.append(ConfigError(file: file, line: line, column: column, message: message))
    }

    /// Records errors found in a file the section names (an `AuthFile`), with their own positions.
    public mutating func report(_ errors: [ConfigError]) {
        self.errors += errors
    }

    private mutating func parse<T>(_ key: String, expecting: String, _ parser: (String) -> T?) -> T? {
        guard let raw = value(key) else { return nil }
        if let parsed = parser(raw.text) { return parsed }
        let shown = raw.text.isEmpty ? "missing value" : "invalid value '\(raw.text)'"
        report(line: raw.line, column: raw.column, "\(shown) for \(raw.key): expected \(expecting)")
        return nil
    }
}
