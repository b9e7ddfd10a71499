/// The parameters rules may set, and how their values are checked.
///
/// Names without a `/` must be listed here (a typo is an error, not a silently ignored
/// setting); `plugin/Name` parameters belong to plug-ins and are accepted as they are, except
/// that any name ending in `Actions` must hold an action list.
public enum ParameterCatalog {
    /// How a parameter's value is parsed.
    public enum Kind: Sendable, Hashable {
        case endpoint, actions, bool, duration, list, filters, text
        /// One of a few words, case-insensitive; the value is kept lower-cased as `.text`.
        case keyword([String])
    }

    /// A known parameter.
    public struct Parameter: Sendable, Hashable {
        /// Canonical spelling.
        public var name: String
        /// Value kind.
        public var kind: Kind
    }

    /// The core parameters settable per recipient, as documented in `docs/rules.md`.
    public static let known: [Parameter] = [
        Parameter(name: "SenderAddress", kind: .endpoint),
        Parameter(name: "SenderTLS", kind: .keyword(TLSPolicy.allCases.map(\.rawValue))),
        Parameter(name: "ProcessingErrors", kind: .actions),
        Parameter(name: "ReturnReject", kind: .bool),
        Parameter(name: "SkipDSNOnBlock", kind: .bool),
        Parameter(name: "BeforeQueueFilters", kind: .filters),
        Parameter(name: "AfterQueueFilters", kind: .filters),
        Parameter(name: "ScanTimeout", kind: .duration),
        Parameter(name: "AdminMail", kind: .text),
        Parameter(name: "FilterMail", kind: .text),
    ]

    private static let byKey = Dictionary(uniqueKeysWithValues: known.map { (ASCII.lowercased($0.name), $0) })

    /// The parameter `name` refers to, or nil for an unknown core name.
    public static func parameter(named name: String) -> Parameter? {
        let key = ASCII.lowercased(name)
        if let parameter = byKey[key] { return parameter }
        guard name.contains("/") else { return nil }
        return Parameter(name: name, kind: key.hasSuffix("actions") ? .actions : .text)
    }

    /// Parses `value` for `kind`; on failure the byte offset in `value` and a message.
    public static func parse(_ value: String, as kind: Kind) -> Result<ParameterValue, CatalogError> {
        switch kind {
        case .text:
            return .success(.text(value))
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
        case .bool:
            guard let flag = ValueSyntax.parseBool(value) else {
                return .failure(CatalogError(offset: 0, message: "invalid value '\(value)': expected yes or no"))
            }
            return .success(.bool(flag))
        case .duration:
            guard let duration = ValueSyntax.parseDuration(value), duration > .zero else {
                return .failure(CatalogError(offset: 0, message: "invalid time '\(value)': expected e.g. 30s, 5m, 2h"))
            }
            return .success(.duration(duration))
        case .list:
            let items = value.split(separator: ",").map { ASCII.trim($0) }.filter { !$0.isEmpty }
            return .success(.list(items.map(ASCII.lowercased)))
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
