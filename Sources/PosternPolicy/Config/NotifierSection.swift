import Glibc
import PosternUtil

/// `[Notifier]`: who notifications come from and go to, and the templates they are made of.
public struct NotifierSection: Sendable {
    /// Sender of DSNs and notifications; default `postern@<Hostname>`.
    public var filterMail: String
    /// Recipient of admin notifications.
    public var adminMail = ConfigDefaults.adminMail
    /// Directory of notification templates as written (a relative one is relative to the
    /// configuration file); nil uses the built-in text for the administrator.
    public var templatesDir: String?
    /// The templates of `templatesDir`, every one checked at load.
    public var templates: NotificationTemplates?
    /// Who hears of a `notify` action when no rule says otherwise.
    public var notify: [NotifyParty] = [.admin]

    /// Defaults for a host name.
    public init(hostname: String) {
        filterMail = "postern@" + hostname
    }

    /// `releaseAddress`: `[Quarantine] ReleaseAddress`, which `$RELEASE$` needs.
    package static func read(_ reader: inout SectionReader, hostname: String, releaseAddress: String?) -> NotifierSection {
        var section = NotifierSection(hostname: hostname)
        section.filterMail = reader.optionalString("FilterMail") ?? section.filterMail
        section.adminMail = reader.optionalString("AdminMail") ?? section.adminMail
        section.templatesDir = reader.optionalString("TemplatesDir")
        if let raw = reader.value("Notify") {
            switch ParameterCatalog.parse(raw.text, as: .keywords(NotifyParty.allCases.map(\.rawValue))) {
            case .success(.list(let words)): section.notify = words.compactMap(NotifyParty.init(rawValue:))
            case .success: break
            case .failure(let error): reader.report(line: raw.line, column: raw.column + error.offset, "Notify: \(error.message)")
            }
            if section.templatesDir == nil && section.notify != [.admin] && !section.notify.isEmpty {
                reader.report(line: raw.line, column: raw.column, "Notify: the sender and the recipients are told with templates: set TemplatesDir")
            }
        }
        if let written = section.templatesDir, let raw = reader.section.keys["templatesdir"]?.values.first {
            // Relative to the configuration file, like file: lookups: `templates` next to postern.conf.
            let dir = TextFile.resolve(written, relativeTo: TextFile.directory(of: reader.file))
            if let d = opendir(dir) {
                closedir(d)
                switch NotificationTemplates.load(directory: dir, at: (reader.file, raw.line, raw.column),
                                                    releaseAddress: releaseAddress != nil) {
                case .success(let templates): section.templates = templates
                case .failure(let errors): reader.report(errors.errors)
                }
            } else {
                reader.report(line: raw.line, column: raw.column,
                              "TemplatesDir: cannot open directory '\(dir)': \(String(cString: strerror(errno)))")
            }
        }
        return section
    }
}
