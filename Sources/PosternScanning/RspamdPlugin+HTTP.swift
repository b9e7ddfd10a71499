import PosternUtil
extension RspamdPlugin {
    /// An HTTP/1.1 response as rspamd sends it, the body without its framing. rspamd 3.4 sends
    /// `Content-Length`; chunked replies and bodies ended by EOF are read too (a proxy may
    /// stand in between).
    public struct HTTPResponse: Sendable, Hashable {
        public var status: Int
        public var reason: String
        public var body: [UInt8]

        public init(status: Int, reason: String, body: [UInt8]) {
            self.status = status
            self.reason = reason
            self.body = body
        }

        /// RFC 9112 §4, §6.3, §7.1:
        ///
        ///     HTTP-message = status-line *( field-line CRLF ) CRLF [ message-body ]
        ///     status-line  = HTTP-version SP 3DIGIT SP [ reason-phrase ]
        ///     chunked-body = *chunk last-chunk trailer-section CRLF
        ///     chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
        ///
        /// nil while more bytes are needed. At EOF a body without length or chunking ends there
        /// (§6.3 rule 8) and anything incomplete is an error. 1xx interim responses are skipped;
        /// 204 and 304 have no body (rule 1).
        public static func parse(_ bytes: [UInt8], atEOF: Bool) throws(PluginError) -> HTTPResponse? {
            var rest = bytes[...]
            while true {
                guard let headEnd = find([13, 10, 13, 10], in: rest) else {
                    if atEOF { throw PluginError(rest.isEmpty ? "closed the connection without a reply" : "truncated reply header") }
                    return nil
                }
                let head = String(decoding: rest[..<headEnd], as: UTF8.self)
                rest = rest[(headEnd + 4)...]
                let lines = head.split(separator: "\r\n", omittingEmptySubsequences: false)
                let status = lines[0].split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
                guard status.count >= 2, status[0].hasPrefix("HTTP/1."), status[1].utf8.count == 3,
                      status[1].utf8.allSatisfy(ASCII.isDigit), let code = Int(status[1]) else { throw PluginError.unexpected(lines[0]) }
                if code < 200 { continue }
                var length: Int?
                var chunked = false
                for line in lines.dropFirst() {
                    guard let colon = line.firstIndex(of: ":") else { throw PluginError.unexpected(line) }
                    let value = ASCII.lowercased(ASCII.trim(line[line.index(after: colon)...]))
                    switch ASCII.lowercased(String(line[..<colon])) {
                    case "content-length":
                        guard !value.isEmpty, value.utf8.count < 16, value.utf8.allSatisfy(ASCII.isDigit) else { throw PluginError.unexpected(line) }
                        length = Int(value)
                    case "transfer-encoding":
                        guard ASCII.trim(value.split(separator: ",").last ?? "") == "chunked" else { throw PluginError.unexpected(line) }
                        chunked = true
                    default:
                        break
                    }
                }
                let body: [UInt8]
                if code == 204 || code == 304 {
                    body = []   // §6.3 rule 1: never a body
                } else if chunked {
                    guard let data = try dechunk(rest, atEOF: atEOF) else { return nil }
                    body = data
                } else if let length {
                    guard rest.count >= length else {
                        if atEOF { throw PluginError("reply shorter than its Content-Length") }
                        return nil
                    }
                    body = Array(rest.prefix(length))
                } else {
                    guard atEOF else { return nil }
                    body = Array(rest)
                }
                return HTTPResponse(status: code, reason: status.count == 3 ? String(status[2]) : "", body: body)
            }
        }

        private static func dechunk(_ data: ArraySlice<UInt8>, atEOF: Bool) throws(PluginError) -> [UInt8]? {
            var body: [UInt8] = []
            var rest = data
            while true {
                guard let lineEnd = find([13, 10], in: rest) else { return try incomplete(atEOF) }
                let size = rest[..<lineEnd].prefix { $0 != UInt8(ascii: ";") }.filter { !ASCII.isSpace($0) }
                let hex: (UInt8) -> Bool = { ASCII.isDigit($0) || (0x61...0x66).contains(ASCII.lower($0)) }
                guard !size.isEmpty, size.count <= 8, size.allSatisfy(hex), let n = Int(String(decoding: size, as: UTF8.self), radix: 16) else {
                    throw PluginError("bad chunk size in reply")
                }
                rest = rest[(lineEnd + 2)...]
                if n == 0 {
                    // trailer-section CRLF: field lines up to an empty one.
                    while true {
                        guard let end = find([13, 10], in: rest) else { return try incomplete(atEOF) }
                        if end == rest.startIndex { return body }
                        rest = rest[(end + 2)...]
                    }
                }
                guard rest.count >= n + 2 else { return try incomplete(atEOF) }
                guard rest.dropFirst(n).starts(with: [13, 10]) else { throw PluginError("bad chunk in reply") }
                body += rest.prefix(n)
                rest = rest.dropFirst(n + 2)
            }
        }

        private static func incomplete(_ atEOF: Bool) throws(PluginError) -> [UInt8]? {
            if atEOF { throw PluginError("truncated chunked reply") }
            return nil
        }

        /// Index of the first `pattern` in `bytes`.
        private static func find(_ pattern: [UInt8], in bytes: ArraySlice<UInt8>) -> Int? {
            guard bytes.count >= pattern.count else { return nil }
            var i = bytes.startIndex
            while i <= bytes.endIndex - pattern.count {
                if bytes[i] == pattern[0] && bytes[i..<(i + pattern.count)].elementsEqual(pattern) { return i }
                i += 1
            }
            return nil
        }
    }
}
