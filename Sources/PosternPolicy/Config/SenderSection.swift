import PosternSMTP
import PosternUtil
/// `[Sender]`: delivery of checked mail (senderd).
public struct SenderSection: Sendable {
    /// The default route, used when no rule sets `SenderAddress` (always for DSNs and notifications).
    public var address: Endpoint = try! Endpoint.parse(ConfigDefaults.senderAddress)
    /// senderd's socket for wake-ups; default `local:<RunDir>/senderd.sock`.
    public var controlAddress: Endpoint
    /// Longest wait for a TCP connection and the greeting.
    public var connectTimeout = ConfigDefaults.connectTimeout
    /// Longest wait for a reply to a command.
    public var commandTimeout = ConfigDefaults.commandTimeout
    /// Longest wait for the reply to end-of-data.
    public var dataTimeout = ConfigDefaults.senderDataTimeout
    /// Most concurrent outgoing connections.
    public var maxConnections = ConfigDefaults.maxConnections
    /// Waits between delivery attempts; the last one repeats.
    public var retryIntervals = ConfigDefaults.retryIntervals
    /// Mail still undeliverable after this bounces.
    public var maxQueueLifetime = ConfigDefaults.maxQueueLifetime
    /// A recipient still undelivered after this gets one delay DSN; zero: none.
    public var delayWarningTime = ConfigDefaults.delayWarningTime
    /// Secret for the loop-guard HMAC; empty: a random key kept in the spool (`.guard-key`).
    public var secureHash = ""
    /// `yes`: an after-queue block is not reported to the sender by DSN.
    public var skipDSNOnBlock = false
    /// STARTTLS to the next hop; rules override it per recipient with `SenderTLS`.
    public var tls = ConfigDefaults.senderTLS
    /// Trust anchors for `TLS = verify`; nil means the system's trust store.
    public var tlsCAFile: PEMFile?
    /// Client certificate chain offered to next hops that ask for one.
    public var tlsCertificate: PEMFile?
    /// Its private key.
    public var tlsKey: PEMFile?
    /// The name a next hop's certificate must carry under `verify` when its route names an IP
    /// address (callback mode); nil means the address itself must be in the certificate.
    public var tlsServerName: String?
    /// Credentials for SMTP AUTH, by next hop.
    public var authFile: AuthFile?
    /// Next hops that may be sent credentials on a connection without TLS.
    public var authWithoutTLS: [NextHopMatch] = []

    /// Defaults for a run directory.
    public init(runDir: String = ConfigDefaults.runDir) {
        controlAddress = Endpoint(location: .unix(path: runDir + "/senderd.sock"))
    }

    package static func read(_ reader: inout SectionReader, runDir: String) -> SenderSection {
        var section = SenderSection(runDir: runDir)
        let protocolValue = reader.value("Protocol")
        let addressValue = reader.section.keys["address"]?.values.first
        if let address = reader.endpoint("Address") {
            if address.hasMacros, let raw = addressValue {
                // DSNs and notifications have no client to call back; route by rule instead.
                reader.report(line: raw.line, column: raw.column,
                              "the default route cannot use CLIENT-IP or SERVER-IP; set SenderAddress in a rule instead")
            } else {
                section.address = address
            }
        }
        if let raw = protocolValue {
            // `Protocol` is the Dr.Web MailD spelling; it applies when Address has no prefix.
            let explicit = addressValue.map { ASCII.lowercased($0.text).hasPrefix("smtp:") || ASCII.lowercased($0.text).hasPrefix("lmtp:") } ?? false
            if let chosen = Endpoint.MailProtocol(rawValue: ASCII.lowercased(raw.text)) {
                if explicit && chosen != section.address.mailProtocol {
                    reader.report(line: raw.line, column: raw.column, "Protocol \(chosen.rawValue) contradicts the prefix of Address")
                }
                if !explicit { section.address.mailProtocol = chosen }
            } else {
                reader.report(line: raw.line, column: raw.column, "invalid Protocol '\(raw.text)': expected smtp or lmtp")
            }
        }
        section.controlAddress = reader.localEndpoint("ControlAddress") ?? section.controlAddress
        section.connectTimeout = reader.duration("ConnectTimeout") ?? section.connectTimeout
        section.commandTimeout = reader.duration("CommandTimeout") ?? section.commandTimeout
        section.dataTimeout = reader.duration("DataTimeout") ?? section.dataTimeout
        section.maxConnections = reader.integer("MaxConnections", in: 1...Int.max) ?? section.maxConnections
        if let intervals = reader.durations("RetryIntervals") {
            section.retryIntervals = intervals.isEmpty ? section.retryIntervals : intervals
        }
        section.maxQueueLifetime = reader.duration("MaxQueueLifetime") ?? section.maxQueueLifetime
        section.delayWarningTime = reader.durationOrOff("DelayWarningTime") ?? section.delayWarningTime
        section.secureHash = reader.string("SecureHash") ?? ""
        section.skipDSNOnBlock = reader.bool("SkipDSNOnBlock") ?? false
        readTLS(&reader, into: &section)
        readAuth(&reader, into: &section)
        return section
    }
}
