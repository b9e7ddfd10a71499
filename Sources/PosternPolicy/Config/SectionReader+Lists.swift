import PosternUtil
extension SectionReader {
    /// A list: comma-separated, and repeated keys append. `Key =` gives an empty list, which
    /// clears a default.
    public mutating func list(_ key: String) -> [String]? {
        items(key)?.map(\.text)
    }

    /// Comma-separated items of every occurrence, with positions; empty items are errors.
    public mutating func items(_ key: String) -> [RawItem]? {
        guard let raw = use(key) else { return nil }
        var result: [RawItem] = []
        for occurrence in raw.values {
            for item in occurrence.items {
                if item.isMissing {
                    report(line: item.line, column: item.column, "empty item in list \(occurrence.key)")
                } else {
                    result.append(item)
                }
            }
        }
        return result
    }

    /// A list of addresses.
    public mutating func endpoints(_ key: String) -> [Endpoint]? {
        guard let items = items(key) else { return nil }
        var result: [Endpoint] = []
        for item in items {
            do throws(EndpointError) {
                result.append(try Endpoint.parse(item.text))
            } catch {
                report(line: item.line, column: item.column + error.offset, error.description)
            }
        }
        return result
    }

    /// A list of times such as `1m, 5m, 15m`.
    public mutating func durations(_ key: String) -> [Duration]? {
        guard let items = items(key) else { return nil }
        var result: [Duration] = []
        for item in items {
            if let duration = ValueSyntax.parseDuration(item.text), duration > .zero {
                result.append(duration)
            } else {
                report(line: item.line, column: item.column,
                       "invalid time '\(item.text)': expected e.g. 30s, 5m, 2h, 1d or 500ms")
            }
        }
        return result
    }

    /// A list of networks such as `127.0.0.0/8, ::1/128`.
    public mutating func networks(_ key: String) -> [CIDR]? {
        guard let items = items(key) else { return nil }
        var result: [CIDR] = []
        for item in items {
            if let network = CIDR(item.text) {
                result.append(network)
            } else {
                report(line: item.line, column: item.column,
                       "invalid network '\(item.text)': expected an address or ADDRESS/PREFIX")
            }
        }
        return result
    }
}
