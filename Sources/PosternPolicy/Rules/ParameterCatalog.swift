import PosternSMTP
import PosternUtil
/// The parameters rules may set, and how their values are checked.
///
/// Only parameters that some daemon resolves per recipient are accepted: a setting nothing
/// reads would look as if it worked (`posternctl rules test` shows it) and change nothing.
/// Core names are listed here; a plug-in's are `plugin/VERDICTActions`, one per verdict of a
/// known plug-in (`clamav/InfectedActions`). Anything else is refused with the list of what a
/// rule can set.
public enum ParameterCatalog {
    /// How a parameter's value is parsed.
    public enum Kind: Sendable, Hashable {
        case endpoint, actions, bool, filters
        /// One of a few words, case-insensitive; the value is kept lower-cased as `.text`.
        case keyword([String])
        /// A mail address (`AdminMail`), kept as written in `.text`.
        case mailbox
        /// A positive time (`ScanTimeout`), `.duration`.
        case duration
        /// A positive size (`clamav/MaxSize`), `.size`.
        case size
        /// A decimal number (`spamassassin/SpamThreshold`), `.number`.
        case number
        /// A comma-separated list of some of a few words, lower-cased, each once, in `.list`.
        case keywords([String])
    }

    /// A known parameter.
    public struct Parameter: Sendable, Hashable {
        /// Canonical spelling.
        public var name: String
        /// Value kind.
        public var kind: Kind
    }

    /// The core parameters resolved per recipient, as documented in `docs/rules.md`:
    /// `SenderAddress` (scannerd's routes), `SenderTLS` (scannerd, into the verdict for senderd), `ProcessingErrors` (scannerd, and receiverd when
    /// scannerd does not answer), `ReturnReject` and `SkipDSNOnBlock` (scannerd), the filter lists
    /// (scannerd, and receiverd to know whether to wait), `ScanTimeout` (the shortest of a
    /// message's recipients bounds its scan, in scannerd and receiverd), `AdminMail`,
    /// `FilterMail` and `Notify` (scannerd's notifications).
    public static let known: [Parameter] = [
        Parameter(name: "SenderAddress", kind: .endpoint),
        Parameter(name: "SenderTLS", kind: .keyword(TLSPolicy.allCases.map(\.rawValue))),
        Parameter(name: "ProcessingErrors", kind: .actions),
        Parameter(name: "ReturnReject", kind: .bool),
        Parameter(name: "SkipDSNOnBlock", kind: .bool),
        Parameter(name: "BeforeQueueFilters", kind: .filters),
        Parameter(name: "AfterQueueFilters", kind: .filters),
        Parameter(name: "ScanTimeout", kind: .duration),
        Parameter(name: "AdminMail", kind: .mailbox),
        Parameter(name: "FilterMail", kind: .mailbox),
        Parameter(name: "Notify", kind: .keywords(NotifyParty.allCases.map(\.rawValue))),
    ]

    /// The plug-in settings besides the action lists that scannerd resolves per recipient:
    /// `MaxSize` of every plug-in, the thresholds of the spam plug-ins.
    public static func settings(of plugin: String) -> [Parameter] {
        var own = [Parameter(name: plugin + "/MaxSize", kind: .size)]
        if plugin == "spamassassin" || plugin == "rspamd" {
            own += [Parameter(name: plugin + "/SpamThreshold", kind: .number),
                    Parameter(name: plugin + "/UnconditionalSpamThreshold", kind: .number)]
        }
        return own
    }

    private static let byKey = Dictionary(uniqueKeysWithValues: known.map { (ASCII.lowercased($0.name), $0) })

    /// Every parameter a rule can set: the core ones, then each known plug-in's action lists.
    public static var settable: [String] {
        known.map(\.name) + PluginCatalog.displayNames.flatMap { name, _ in
            PluginCatalog.verdicts(of: name).map { PluginSection.parameter(plugin: name, verdict: $0) } + settings(of: name).map(\.name)
        }
    }

    /// The parameter `name` refers to, or why no rule can set it.
    public static func parameter(named name: String) -> Result<Parameter, CatalogError> {
        let key = ASCII.lowercased(name)
        if let parameter = byKey[key] { return .success(parameter) }
        let core = known.map(\.name).joined(separator: ", ")
        guard let slash = key.firstIndex(of: "/") else {
            return .failure(CatalogError(offset: 0, message:
                "unknown parameter '\(name)': rules can set \(core) and the plug-ins' action lists (e.g. clamav/InfectedActions), MaxSize and spam thresholds"))
        }
        let plugin = String(key[..<slash])
        let rest = name[name.index(after: name.firstIndex(of: "/")!)...]
        guard let display = PluginCatalog.displayName(plugin) else {
            let names = PluginCatalog.displayNames.map(\.0).joined(separator: ", ")
            return .failure(CatalogError(offset: 0, message: "unknown plug-in '\(name[..<name.firstIndex(of: "/")!])' in '\(name)': expected one of \(names)"))
        }
        let own = PluginCatalog.verdicts(of: plugin).map { PluginSection.parameter(plugin: plugin, verdict: $0) }
        if let canonical = own.first(where: { ASCII.lowercased($0) == key }) {
            return .success(Parameter(name: canonical, kind: .actions))
        }
        if let setting = settings(of: plugin).first(where: { ASCII.lowercased($0.name) == key }) {
            return .success(setting)
        }
        let all = own + settings(of: plugin).map(\.name)
        return .failure(CatalogError(offset: 0, message:
            "'\(name)' is not resolved per recipient: set \(rest) in [\(display)]; rules can set \(all.joined(separator: ", ")) for this plug-in"))
    }

    /// Parses `value` for `kind`; on failure the byte offset in `value` and a message.
    public static func parse(_ value: String, as kind: Kind) -> Result<ParameterValue, CatalogError> {
        switch kind {
        case .keyword(let words):
            let lowered = ASCII.lowercased(value)
            guard words.contains(lowered) else {
                let list = words.dropLast().joined(separator: ", ") + (words.count > 1 ? " or " : "") + (words.last ?? "")
                return .failure(CatalogError(offset: 0, message: "invalid value '\(value)': expected \(list)"))
            }
            return .success(.text(lowered))
        case .endpoint:
            do throws(EndpointError) {
                return .success(.endpoint(try Endpoint.parse(value)))
            } catch {
                return .failure(CatalogError(offset: error.offset, message: error.description))
            }
        case .actions:
            do throws(ActionError) {
                return .success(.actions(try ActionList.parse(value)))
            } catch {
                return .failure(CatalogError(offset: error.offset, message: error.description))
            }
        case .mailbox:
            // One address, as a header field or an envelope would carry it.
            if let bad = value.utf8.firstIndex(where: { $0 <= 0x20 || $0 == 0x7F || $0 == UInt8(ascii: "<") || $0 == UInt8(ascii: ">") || $0 == UInt8(ascii: ",") }) {
                return .failure(CatalogError(offset: value.utf8.distance(from: value.utf8.startIndex, to: bad),
                                             message: "invalid address '\(value)': expected one address such as postmaster@example.org"))
            }
            return value.isEmpty ? .failure(CatalogError(offset: 0, message: "missing address")) : .success(.text(value))
        case .duration:
            guard let d = ValueSyntax.parseDuration(value), d > .zero else {
                return .failure(CatalogError(offset: 0, message: "invalid value '\(value)': expected a time such as 30s, 5m, 2h, 1d or 500ms"))
            }
            return .success(.duration(d))
        case .size:
            guard let n = ValueSyntax.parseSize(value), n > 0 else {
                return .failure(CatalogError(offset: 0, message: "invalid value '\(value)': expected a size such as 10m, 400k, 1g or a number of bytes"))
            }
            return .success(.size(n))
        case .number:
            guard let n = Double(value), n.isFinite else {
                return .failure(CatalogError(offset: 0, message: "invalid value '\(value)': expected a number such as 5 or 12.5"))
            }
            return .success(.number(n))
        case .keywords(let words):
            var items: [String] = []
            for item in value.split(separator: ",").map({ ASCII.lowercased(ASCII.trim($0)) }) where !item.isEmpty {
                guard words.contains(item) else {
                    return .failure(CatalogError(offset: 0, message: "unknown word '\(item)': expected some of \(words.joined(separator: ", "))"))
                }
                if !items.contains(item) { items.append(item) }
            }
            return .success(.list(items))
        case .bool:
            guard let flag = ValueSyntax.parseBool(value) else {
                return .failure(CatalogError(offset: 0, message: "invalid value '\(value)': expected yes or no"))
            }
            return .success(.bool(flag))
        case .filters:
            // A plug-in name that is not known would silently scan nothing.
            let items = value.split(separator: ",").map { ASCII.lowercased(ASCII.trim($0)) }.filter { !$0.isEmpty }
            if let unknown = items.first(where: { PluginCatalog.displayName($0) == nil }) {
                let known = PluginCatalog.displayNames.map(\.1).joined(separator: ", ")
                return .failure(CatalogError(offset: 0, message: "unknown plug-in '\(unknown)': expected one of \(known)"))
            }
            return .success(.list(items))
        }
    }

    /// A value that does not fit its parameter.
    public struct CatalogError: Error, Sendable, Hashable {
        /// Byte offset in the value.
        public var offset: Int
        /// What is wrong.
        public var message: String
    }
}
