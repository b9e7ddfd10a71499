import PosternUtil
/// `[Scanner]`: scannerd's socket and which plug-ins run when.
public struct ScannerSection: Sendable {
    /// scannerd's socket for receiverd; default `local:<RunDir>/scannerd.sock`.
    public var address: Endpoint
    /// Plug-ins run while the MTA waits after end-of-data (their verdict becomes the reply).
    public var beforeQueueFilters: [String] = []
    /// Plug-ins run after the message was accepted (a block is reported by DSN).
    public var afterQueueFilters: [String] = []
    /// Longest time a scan may take before `ProcessingErrors` applies.
    public var scanTimeout = ConfigDefaults.scanTimeout

    /// Defaults for a run directory.
    public init(runDir: String = ConfigDefaults.runDir) {
        address = Endpoint(location: .unix(path: runDir + "/scannerd.sock"))
    }

    package static func read(_ reader: inout SectionReader, runDir: String) -> ScannerSection {
        var section = ScannerSection(runDir: runDir)
        section.address = reader.localEndpoint("Address") ?? section.address
        section.beforeQueueFilters = reader.pluginNames("BeforeQueueFilters")
        section.afterQueueFilters = reader.pluginNames("AfterQueueFilters")
        for name in Set(section.beforeQueueFilters).intersection(section.afterQueueFilters).sorted() {
            let raw = reader.section.keys["afterqueuefilters"]!.values[0]
            reader.report(line: raw.line, column: raw.column, "plug-in '\(name)' is listed in both BeforeQueueFilters and AfterQueueFilters")
        }
        section.scanTimeout = reader.duration("ScanTimeout") ?? section.scanTimeout
        return section
    }
}

extension SectionReader {
    /// A list of known plug-in names, lower-cased, each at most once.
    package mutating func pluginNames(_ key: String) -> [String] {
        var names: [String] = []
        for item in items(key) ?? [] {
            let name = ASCII.lowercased(item.text)
            if PluginCatalog.displayName(name) == nil {
                let known = PluginCatalog.displayNames.map(\.1).joined(separator: ", ")
                report(line: item.line, column: item.column, "unknown plug-in '\(item.text)' in \(key): expected one of \(known)")
            } else if names.contains(name) {
                report(line: item.line, column: item.column, "plug-in '\(item.text)' is listed twice in \(key)")
            } else {
                names.append(name)
            }
        }
        return names
    }

    /// An address the daemons listen on or talk among themselves: no CLIENT-IP/SERVER-IP.
    package mutating func localEndpoint(_ key: String) -> Endpoint? {
        guard let endpoint = endpoint(key) else { return nil }
        if endpoint.hasMacros, let raw = section.keys[ASCII.lowercased(key)]?.values.first {
            report(line: raw.line, column: raw.column, "CLIENT-IP and SERVER-IP cannot be used in \(raw.key) of [\(name)]")
            return nil
        }
        return endpoint
    }
}
