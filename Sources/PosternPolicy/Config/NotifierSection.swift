import Glibc

/// `[Notifier]`: who notifications come from and go to.
public struct NotifierSection: Sendable {
    /// Sender of DSNs and notifications; default `postern@<Hostname>`.
    public var filterMail: String
    /// Recipient of admin notifications.
    public var adminMail = ConfigDefaults.adminMail
    /// Directory of notification templates; nil uses the built-in ones.
    public var templatesDir: String?

    /// Defaults for a host name.
    public init(hostname: String) {
        filterMail = "postern@" + hostname
    }

    package static func read(_ reader: inout SectionReader, hostname: String) -> NotifierSection {
        var section = NotifierSection(hostname: hostname)
        section.filterMail = reader.optionalString("FilterMail") ?? section.filterMail
        section.adminMail = reader.optionalString("AdminMail") ?? section.adminMail
        section.templatesDir = reader.optionalString("TemplatesDir")
        if let dir = section.templatesDir, let raw = reader.section.keys["templatesdir"]?.values.first {
            if let d = opendir(dir) {
                closedir(d)
                // XXX: templates are not implemented; say so rather than let the setting look used.
                reader.warn(line: raw.line, column: raw.column,
                            "TemplatesDir is not used yet: notifications and DSNs use the built-in texts")
            } else {
                reader.report(line: raw.line, column: raw.column,
                              "TemplatesDir: cannot open directory '\(dir)': \(String(cString: strerror(errno)))")
            }
        }
        return section
    }
}
