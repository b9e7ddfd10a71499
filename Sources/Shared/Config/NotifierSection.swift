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

    static func read(_ reader: inout SectionReader, hostname: String) -> NotifierSection {
        var section = NotifierSection(hostname: hostname)
        section.filterMail = reader.optionalString("FilterMail") ?? section.filterMail
        section.adminMail = reader.optionalString("AdminMail") ?? section.adminMail
        section.templatesDir = reader.optionalString("TemplatesDir")
        return section
    }
}
