import PosternPolicy
import PosternSMTP
import PosternScanning
import PosternSpool
@testable import ScannerCore

/// A StageScan with findings injected in place of the plug-ins and a fixed clock: the
/// decisions of scannerd without scanners or a spool.
enum StageScanFixture {
    static let arrival = 1_000_000.0
    static let message = Array("Subject: test\r\n\r\nbody\r\n".utf8)

    static func envelope(_ mailProtocol: MailProtocol = .smtp, receivedWith: String = "ESMTP") -> Envelope {
        Envelope(id: "STAGESCAN", arrival: arrival, mailProtocol: mailProtocol, receivedWith: receivedWith, clientIP: "192.0.2.1",
                 mailFrom: "sender@example.org",
                 recipients: [Recipient(address: "user@example.com"), Recipient(address: "abuse@example.com")], size: message.count)
    }

    static let infected = Finding(plugin: "clamav", verdict: .infected, names: ["Eicar-Test-Signature"],
                                  detail: "infected: Eicar-Test-Signature")
    static let down = Finding(plugin: "clamav", verdict: .error, detail: "error: connection refused")

    /// The plug-ins each scan asked for, to see which ran.
    final class Calls: @unchecked Sendable {
        var names: [[String]] = []
    }

    static func scan(_ configText: String, stage: ScanStage = .beforeQueue, envelope: Envelope = envelope(),
                     previous: Verdict? = nil, findings: [Finding], now: Double = arrival + 10,
                     calls: Calls = Calls()) throws -> StageScan.Outcome {
        let config = try PosternConfig.parse(configText, path: "stagescan.conf")
        let scan = StageScan(config: config, stage: stage, plugins: { names, _, _ in
            calls.names.append(names)
            return findings.filter { names.contains($0.plugin) }
        }, clock: { now })
        return try scan.run(envelope: envelope, previous: previous, message: StoredMessage(message), deadline: .now + .seconds(5))
    }
}
