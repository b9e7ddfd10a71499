import PosternUtil
extension RuleParser {
    /// `cidr:` lists and the default IP lookup: addresses or networks separated by commas or
    /// spaces (`cidr:"10.0.0.0/8, 192.0.2.0/24"`).
    package func parseNetworks(_ text: String, at offset: Int) throws(RuleSyntaxError) -> [CIDR] {
        let entries = text.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" })
        guard !entries.isEmpty else { throw RuleSyntaxError(offset: offset, message: "missing address or network") }
        return try entries.map { (entry) throws(RuleSyntaxError) in
            guard let network = CIDR(String(entry)) else {
                let column = text.utf8.distance(from: text.utf8.startIndex, to: entry.utf8.startIndex)
                throw RuleSyntaxError(offset: offset + column, message: "invalid address or network '\(entry)'")
            }
            return network
        }
    }

    package func compile(_ pattern: String, at offset: Int) throws(RuleSyntaxError) -> POSIXRegex {
        do {
            return try POSIXRegex(pattern)
        } catch {
            throw RuleSyntaxError(offset: offset, message: error.description)
        }
    }

    /// A lookup file's entries: one per line, blank lines and `#` comment lines skipped.
    package func readLines(_ path: String, at offset: Int) throws(RuleSyntaxError) -> [(Int, String)] {
        guard !path.isEmpty else { throw RuleSyntaxError(offset: offset, message: "missing file name") }
        let text: String
        do {
            text = try TextFile.read(TextFile.resolve(path, relativeTo: baseDirectory))
        } catch {
            throw RuleSyntaxError(offset: offset, message: error.description)
        }
        var lines: [(Int, String)] = []
        // Split bytes, not Characters: "\r\n" is one Character and would hide the line end.
        for (index, line) in text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
            let entry = ASCII.trim(String(decoding: line.filter { $0 != 0x0D }, as: UTF8.self))
            if !entry.isEmpty && !entry.hasPrefix("#") { lines.append((index + 1, entry)) }
        }
        return lines
    }
}
