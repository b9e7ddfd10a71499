import NIOCore
internal import NIOEmbedded
internal import NIOHTTP1
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

        /// The response in `bytes`: nil while more bytes are needed; at EOF a body without
        /// length or chunking ends there and anything incomplete is an error (RFC 9112 §6.3).
        /// 1xx interim responses are skipped; 204 and 304 have no body.
        public static func parse(_ bytes: [UInt8], atEOF: Bool) throws(PluginError) -> HTTPResponse? {
            let reader = HTTPReplyReader()
            if let response = try reader.feed(bytes[...]) { return response }
            return atEOF ? try reader.finish() : nil
        }
    }
}

/// Reads one HTTP response with NIOHTTP1's decoder (llhttp) on an `EmbeddedChannel`: the
/// scanner socket is blocking and outside NIO, so bytes are fed in as they arrive. What the
/// decoder reports is turned into ``PluginError``s that name the offending line, taken from
/// the bytes as received.
package final class HTTPReplyReader {
    private let channel = EmbeddedChannel()
    /// Everything fed so far: for error texts and the reason phrase, which NIO does not keep.
    private var raw: [UInt8] = []
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()
    private var complete = false

    package init() {
        do {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPResponseDecoder(informationalResponseStrategy: .drop)))
            // The decoder pairs each response with a request it saw go out (a HEAD's has no body).
            try channel.writeOutbound(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: .POST, uri: "/checkv2")))
        } catch {
            preconditionFailure("an EmbeddedChannel refused an HTTP decoder: \(error)")
        }
    }

    deinit { _ = try? channel.finish(acceptAlreadyClosed: true) }

    /// Feeds bytes that came; the response once it is complete.
    package func feed(_ bytes: ArraySlice<UInt8>) throws(PluginError) -> RspamdPlugin.HTTPResponse? {
        guard !complete else { return response() }
        raw += bytes
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
            try collect()
        } catch {
            try collectAfter(error, atEOF: false)   // a complete reply may be followed by garbage
        }
        return complete ? response() : nil
    }

    /// The peer closed: the response, which EOF may complete, or why there is none.
    package func finish() throws(PluginError) -> RspamdPlugin.HTTPResponse {
        if complete { return response() }
        guard !raw.isEmpty else { throw PluginError("closed the connection without a reply") }
        do {
            channel.pipeline.fireChannelInactive()
            try channel.throwIfErrorCaught()
            try collect()
        } catch {
            try collectAfter(error, atEOF: true)
        }
        guard complete else { throw truncated() }
        return response()
    }

    private func collect() throws {
        while let part = try channel.readInbound(as: HTTPClientResponsePart.self) {
            switch part {
            case .head(let h):
                head = h
                // NIO drops 100-199 but passes 101, after which it reads no more HTTP: an
                // upgrade is no answer to /checkv2 (found by the rspamd-reply fuzz target).
                if h.status.code < 200 { throw PluginError.unexpected(statusLine()) }
                try checkTransferEncoding(h)
            case .body(let b): body.writeImmutableBuffer(b)
            case .end: complete = true
            }
        }
    }

    private func collectAfter(_ error: any Error, atEOF: Bool) throws(PluginError) {
        if let pluginError = error as? PluginError { throw pluginError }
        try? collect()
        guard !complete else { return }
        throw explain(error, atEOF: atEOF)
    }

    private func response() -> RspamdPlugin.HTTPResponse {
        RspamdPlugin.HTTPResponse(status: head.map { Int($0.status.code) } ?? 0, reason: reasonPhrase(), body: Array(body.readableBytesView))
    }

    /// Only chunked framing is understood; another coding would give us bytes we cannot read.
    private func checkTransferEncoding(_ h: HTTPResponseHead) throws(PluginError) {
        for (name, value) in h.headers where ASCII.lowercased(name) == "transfer-encoding" {
            guard ASCII.lowercased(ASCII.trim(value.split(separator: ",").last ?? "")) == "chunked" else {
                throw PluginError.unexpected("\(name): \(value)")
            }
        }
    }

    private var isChunked: Bool {
        head?.headers[canonicalForm: "transfer-encoding"].last.map { ASCII.lowercased(String($0)) } == "chunked"
    }

    private func explain(_ error: any Error, atEOF: Bool) -> PluginError {
        switch error as? HTTPParserError {
        case .invalidEOFState?: return truncated()
        case .invalidChunkSize?: return PluginError("bad chunk size in reply")
        case .invalidContentLength?: return PluginError.unexpected(headLine("content-length") ?? statusLine())
        case _ where head != nil && isChunked: return PluginError("bad chunk in reply")
        case _ where head == nil: return PluginError.unexpected(statusLine())
        default: return PluginError("bad reply: \(error)")
        }
    }

    private func truncated() -> PluginError {
        if head == nil { return PluginError("truncated reply header") }
        return PluginError(isChunked ? "truncated chunked reply" : "reply shorter than its Content-Length")
    }

    // MARK: The bytes as received

    /// Where the final response starts: after any 1xx interim responses.
    private var finalStart: Int {
        var start = 0
        while raw.count > start + 12, raw[start...].starts(with: Array("HTTP/1.".utf8)),
              raw[start + 9] == UInt8(ascii: "1"), raw[start + 12] == UInt8(ascii: " "),
              let end = find([13, 10, 13, 10], from: start) {
            start = end + 4
        }
        return start
    }

    private func statusLine() -> String {
        let start = finalStart
        let end = find([13, 10], from: start) ?? raw.count
        return String(decoding: raw[start..<end], as: UTF8.self)
    }

    /// `HTTP/1.1 500 invalid command` → `invalid command`: rspamd says there what went wrong.
    private func reasonPhrase() -> String {
        let parts = statusLine().split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        return parts.count == 3 ? String(parts[2]) : ""
    }

    /// The first field line named `name` (lower-case) in the final response's head.
    private func headLine(_ name: String) -> String? {
        let start = finalStart
        let end = find([13, 10, 13, 10], from: start) ?? raw.count
        return String(decoding: raw[start..<end], as: UTF8.self).split(separator: "\r\n").dropFirst()
            .first { ASCII.lowercased(String($0.prefix { $0 != ":" })) == name }.map(String.init)
    }

    private func find(_ pattern: [UInt8], from start: Int) -> Int? {
        guard raw.count >= pattern.count else { return nil }
        var i = start
        while i <= raw.count - pattern.count {
            if raw[i] == pattern[0] && raw[i..<(i + pattern.count)].elementsEqual(pattern) { return i }
            i += 1
        }
        return nil
    }
}

