@testable import PosternScanning
import Testing

/// rspamd's reply as it arrives: in pieces, through NIOHTTP1's decoder.
@Suite struct RspamdReplyReaderTests {
    static let reply = Array("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1\r\n!\r\n0\r\n\r\n".utf8)

    @Test func byteByByte() throws {
        let reader = HTTPReplyReader()
        var response: RspamdPlugin.HTTPResponse?
        for i in Self.reply.indices {
            #expect(response == nil)
            response = try reader.feed(Self.reply[i...i])
        }
        #expect(response == RspamdPlugin.HTTPResponse(status: 200, reason: "OK", body: Array("hello!".utf8)))
    }

    /// What comes after a complete reply is not read as a second one.
    @Test func garbageAfterACompleteReply() throws {
        let reader = HTTPReplyReader()
        let response = try reader.feed(Array("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}garbage".utf8)[...])
        #expect(response?.body == Array("{}".utf8))
    }

    @Test func aBodyEndedByTheClose() throws {
        let reader = HTTPReplyReader()
        #expect(try reader.feed(Array("HTTP/1.1 200 OK\r\n\r\n{\"score\"".utf8)[...]) == nil)
        #expect(try reader.feed(Array(":1}".utf8)[...]) == nil)
        #expect(try reader.finish().body == Array("{\"score\":1}".utf8))
    }

    /// 101 Switching Protocols ends NIO's reading as HTTP: refused, whatever follows it
    /// (Fuzz/Regressions/rspamd-reply/switching-protocols).
    @Test func anUpgradeIsRefused() {
        let reply = Array("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".utf8)
        #expect(throws: PluginError.self) { try HTTPReplyReader().feed(reply[...]) }
        let reader = HTTPReplyReader()
        #expect(throws: PluginError.self) {
            for i in reply.indices { _ = try reader.feed(reply[i...i]) }
        }
    }
}
