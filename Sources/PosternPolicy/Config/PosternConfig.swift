import PosternUtil
/// The whole configuration, parsed and checked; immutable once loaded. `SIGHUP` builds a new
/// one and keeps the old one if this throws.
/// - SeeAlso: `docs/configuration.md`
public struct PosternConfig: Sendable {
    /// Where the daemons look unless told otherwise.
    public static let defaultPath = "/etc/postern/postern.conf"

    /// The file this came from.
    public var path: String
    /// `[General]`.
    public var general: GeneralSection
    /// `[Receiver]`.
    public var receiver: ReceiverSection
    /// `[Scanner]`.
    public var scanner: ScannerSection
    /// `[Sender]`.
    public var sender: SenderSection
    /// `[Notifier]`.
    public var notifier: NotifierSection
    /// `[Quarantine]`.
    public var quarantine: QuarantineSection
    /// `[Metrics]`.
    public var metrics: MetricsSection
    /// `[Rules]` with the `[Rule:NAME]` groups.
    public var rules: RuleSet
    /// Every plug-in that has a section or is listed in a filter list, by lower-cased name.
    public var plugins: [String: PluginSection]
    /// Every section as parsed, by lower-cased name (`clamav`, `milter:spamd`, `rule:spam`), for
    /// plug-ins to read with ``SectionReader``.
    public var sections: [String: RawSection]

    /// What is accepted but worth a word (`file:line:column: message`): `posternctl config
    /// check` prints these, the daemons log them at start and on reload.
    public var warnings: [ConfigError] = []

    /// Whether receiverd waits for a before-queue scan: some plug-in is listed in
    /// `BeforeQueueFilters`, in `[Scanner]` or by a rule. Derived once at load: receiverd asks
    /// for every message.
    public let synchronous: Bool
    /// Whether any plug-in can run at all (a list in `[Scanner]` or set by a rule).
    public let scansWithPlugins: Bool

    /// Reads and parses a file; a file that cannot be read is one error at line 0.
    public static func load(path: String = defaultPath) throws(ConfigErrors) -> PosternConfig {
        let text: String
        do throws(FileReadError) {
            text = try TextFile.read(path)
        } catch {
            throw ConfigErrors([ConfigError(file: path, line: 0, column: 0, message: error.description)])
        }
        return try parse(text, path: path)
    }

    /// Parses configuration text; `path` names it in errors and anchors relative `file:` lookups.
    public static func parse(_ text: String, path: String) throws(ConfigErrors) -> PosternConfig {
        let document = INIParser.parse(text, file: path)
        var errors = document.errors
        for (key, section) in document.sections {
            if let problem = SectionCatalog.problem(with: key, name: section.name) {
                errors.append(ConfigError(file: path, line: section.line, column: 1, message: problem))
            }
        }
        func reader(_ name: String) -> SectionReader {
            SectionReader(document.sections[ASCII.lowercased(name)], name: name, file: path)
        }
        var general = reader("General"), receiver = reader("Receiver"), scanner = reader("Scanner")
        var sender = reader("Sender"), notifier = reader("Notifier"), quarantine = reader("Quarantine")
        var metrics = reader("Metrics")
        let generalSection = GeneralSection.read(&general)
        let scannerSection = ScannerSection.read(&scanner, runDir: generalSection.runDir)
        let rules = RuleSet.build(from: document.sections, file: path, errors: &errors)
        var pluginReaders: [SectionReader] = []
        var plugins: [String: PluginSection] = [:]
        // Every plug-in some list names, in [Scanner] or in a rule, gets its section (or defaults).
        var listed = Set(scannerSection.beforeQueueFilters + scannerSection.afterQueueFilters)
        for setting in rules.rules.flatMap(\.settings) + rules.groups.values.joined() {
            if case .list(let names) = setting.typed, ["beforequeuefilters", "afterqueuefilters"].contains(setting.key) {
                listed.formUnion(names)
            }
        }
        let ruleKeys = Set(rules.rules.flatMap(\.settings).map(\.key))
        let synchronous = !scannerSection.beforeQueueFilters.isEmpty || ruleKeys.contains("beforequeuefilters")
        for (name, display) in PluginCatalog.displayNames where listed.contains(name) || document.sections[name] != nil {
            var each = reader(display)
            plugins[name] = PluginCatalog.read(name, &each)
            pluginReaders.append(each)
        }
        let quarantineSection = QuarantineSection.read(&quarantine, spoolDir: generalSection.spoolDir)
        var config = PosternConfig(
            path: path,
            general: generalSection,
            receiver: ReceiverSection.read(&receiver),
            scanner: scannerSection,
            sender: SenderSection.read(&sender, runDir: generalSection.runDir),
            notifier: NotifierSection.read(&notifier, hostname: generalSection.hostname, releaseAddress: quarantineSection.releaseAddress),
            quarantine: quarantineSection,
            metrics: MetricsSection.read(&metrics),
            rules: rules,
            plugins: plugins,
            sections: document.sections,
            synchronous: synchronous,
            scansWithPlugins: synchronous || !scannerSection.afterQueueFilters.isEmpty || ruleKeys.contains("afterqueuefilters"))
        for var each in [general, receiver, scanner, sender, notifier, quarantine, metrics] + pluginReaders {
            each.reportUnknownKeys()
            errors += each.errors
            config.warnings += each.warnings
        }
        config.warnings = ConfigErrors(config.warnings).errors
        if config.notifier.templatesDir == nil {
            // Only the administrator's notice has a text built in.
            for rule in rules.rules {
                for setting in rule.settings where setting.key == "notify" && setting.typed != .list(["admin"]) && setting.typed != .list([]) {
                    errors.append(ConfigError(file: path, line: rule.line, column: 1, message:
                        "Notify = \(setting.value): the sender and the recipients are told with templates: set [Notifier] TemplatesDir"))
                }
            }
        }
        guard errors.isEmpty else { throw ConfigErrors(errors) }
        return config
    }
}
