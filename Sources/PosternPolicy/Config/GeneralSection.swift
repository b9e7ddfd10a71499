import PosternUtil
/// `[General]`: identity and places on disk.
public struct GeneralSection: Sendable {
    /// The name used in `Received:`, replies and `FilterMail`; default `gethostname()`.
    public var hostname: String
    /// Root of the spool. A relative path is relative to the working directory.
    public var spoolDir: String = ConfigDefaults.spoolDir
    /// Directory of the daemons' unix sockets. A relative path is relative to the working directory.
    public var runDir: String = ConfigDefaults.runDir
    /// User to switch to after binding, if started as root; nil keeps the current user.
    public var user: String?
    /// Least severe level that is logged.
    public var logLevel: LogLevel = ConfigDefaults.logLevel

    /// Defaults, with the host name from the kernel.
    public init(hostname: String = SystemHostname.current()) {
        self.hostname = hostname
    }

    package static func read(_ reader: inout SectionReader) -> GeneralSection {
        var section = GeneralSection()
        section.hostname = reader.optionalString("Hostname") ?? section.hostname
        section.spoolDir = reader.optionalString("SpoolDir") ?? section.spoolDir
        section.runDir = reader.optionalString("RunDir") ?? section.runDir
        section.user = reader.optionalString("User")
        if let raw = reader.value("LogLevel") {
            if let level = LogLevel(rawValue: ASCII.lowercased(raw.text)) {
                section.logLevel = level
            } else {
                let names = LogLevel.allCases.map(\.rawValue).joined(separator: ", ")
                reader.report(line: raw.line, column: raw.column, "invalid LogLevel '\(raw.text)': expected one of \(names)")
            }
        }
        return section
    }
}
