extension MIMEHeaderValue {
    /// Joins RFC 2231 sections in numeric order and decodes extended values with the charset of
    /// the first section. The first of duplicate parameters or sections wins.
    ///
    /// XXX: sections are joined whatever gaps lie between them (§3 asks for a sequence from 0);
    /// joining more is the safer side for a filter.
    package mutating func combine(_ raw: [RawParameter]) {
        var plain: [String: [UInt8]] = [:]
        var whole: [String: [UInt8]] = [:]
        var sections: [String: [Int: RawParameter]] = [:]
        for p in raw {
            if let section = p.section {
                if sections[p.name]?[section] == nil { sections[p.name, default: [:]][section] = p }
            } else if p.extended {
                if whole[p.name] == nil { whole[p.name] = p.value }
            } else if plain[p.name] == nil {
                plain[p.name] = p.value
            }
        }
        for (name, value) in plain { parameters[name] = String(decoding: value, as: UTF8.self) }
        for (name, parts) in sections { setExtended(name, Self.joinSections(parts)) }
        for (name, value) in whole where sections[name] == nil {
            let (charset, encoded) = Self.splitCharset(value)
            setExtended(name, Charset.decode(Charset.percentDecode(encoded), charset: charset))
        }
    }

    private mutating func setExtended(_ name: String, _ value: String) {
        if let plain = parameters[name], plain != value { shadowed[name] = plain }
        parameters[name] = value
    }

    /// extended-initial-value := [charset] "'" [language] "'" extended-other-values (§4);
    /// without two quotes the whole value is percent-encoded UTF-8.
    package static func splitCharset(_ value: [UInt8]) -> (String, ArraySlice<UInt8>) {
        guard let first = value.firstIndex(of: 0x27),
              let second = value[(first + 1)...].firstIndex(of: 0x27) else { return ("", value[...]) }
        return (String(decoding: value[..<first], as: UTF8.self), value[(second + 1)...])
    }

    package static func joinSections(_ parts: [Int: RawParameter]) -> String {
        var bytes: [UInt8] = []
        var charset = ""
        for index in parts.keys.sorted() {
            let part = parts[index]!
            guard part.extended else { bytes += part.value; continue }
            var encoded = part.value[...]
            if index == 0 { (charset, encoded) = splitCharset(part.value) }
            bytes += Charset.percentDecode(encoded)
        }
        return Charset.decode(bytes, charset: charset)
    }
}
