import PosternSMTP
import PosternUtil
/// `[Receiver]`: the SMTP/LMTP server the MTA hands mail to (receiverd).
public struct ReceiverSection: Sendable {
    /// Where to listen (ignored for sockets systemd passes in).
    public var address: [Endpoint] = [try! Endpoint.parse(ConfigDefaults.receiverAddress)]
    /// Clients allowed to connect and to send XFORWARD.
    public var protectedNetworks: [CIDR] = ConfigDefaults.protectedNetworks.map { CIDR($0)! }
    /// Largest message accepted, in bytes.
    public var maxMessageSize = ConfigDefaults.maxMessageSize
    /// Most RCPT TO per transaction.
    public var maxRecipients = ConfigDefaults.maxRecipients
    /// Most concurrent sessions.
    public var maxSessions = ConfigDefaults.maxSessions
    /// Idle time allowed between commands.
    public var commandTimeout = ConfigDefaults.commandTimeout
    /// Idle time allowed inside DATA/BDAT.
    public var dataTimeout = ConfigDefaults.dataTimeout
    /// Stress mode begins when this percentage of `maxSessions` is open; 0 = never.
    public var stressThreshold = ConfigDefaults.stressThreshold
    /// `commandTimeout` in stress mode (the shorter of the two applies).
    public var stressCommandTimeout = ConfigDefaults.stressCommandTimeout
    /// `dataTimeout` in stress mode (the shorter of the two applies).
    public var stressDataTimeout = ConfigDefaults.stressDataTimeout
    /// Most concurrent sessions from one client address; 0 = no limit.
    public var clientConnectionLimit = ConfigDefaults.clientConnectionLimit
    /// Most new connections from one client address per `clientRateTimeUnit`; 0 = no limit.
    public var clientConnectionRateLimit = ConfigDefaults.clientConnectionRateLimit
    /// The time unit of `clientConnectionRateLimit`.
    public var clientRateTimeUnit = ConfigDefaults.clientRateTimeUnit
    /// Clients the per-address limits never apply to.
    public var limitExempt: [CIDR] = ConfigDefaults.limitExempt.map { CIDR($0)! }
    /// What to do when scanning fails, as written (validated, canonical form).
    public var processingErrors = ConfigDefaults.processingErrors
    /// `processingErrors` parsed.
    public var processingErrorsActions = ActionList(main: .tempfail)
    /// `no`: a reject is answered 250 and reported by DSN instead of 550.
    public var returnReject = true
    /// Postfix's `soft_bounce`: every 5xx end-of-data or session reply becomes 4xx, so that
    /// nothing is refused for good while a new rule set or plug-in is tried.
    public var softBounce = false
    /// Add Postern's `Received:` header.
    public var addReceivedHeader = true
    /// More `Received:` headers than this is a mail loop (554 5.4.6).
    public var maxReceivedHeaders = ConfigDefaults.maxReceivedHeaders
    /// A message that has passed this filter this often already (its valid loop guards) is
    /// in a loop through it: it is put on hold, not queued.
    public var maxFilterPasses = ConfigDefaults.maxFilterPasses
    /// PEM certificate chain for STARTTLS; nil means STARTTLS is not offered.
    public var tlsCertificate: String?
    /// PEM private key for STARTTLS.
    public var tlsKey: String?

    /// Defaults.
    public init() {}

    package static func read(_ reader: inout SectionReader) -> ReceiverSection {
        var section = ReceiverSection()
        if let address = reader.endpoints("Address") {
            let items = reader.section.keys["address"]?.values.flatMap(\.items) ?? []
            for item in items where (try? Endpoint.parse(item.text))?.hasMacros == true {
                reader.report(line: item.line, column: item.column, "CLIENT-IP and SERVER-IP cannot be used in a listening address")
            }
            section.address = address
        }
        section.protectedNetworks = reader.networks("ProtectedNetworks") ?? section.protectedNetworks
        section.maxMessageSize = reader.size("MaxMessageSize") ?? section.maxMessageSize
        // At most 10000: a verdict line carries a reply code per recipient (IPCMessage.maxLine).
        section.maxRecipients = reader.integer("MaxRecipients", in: 1...10_000) ?? section.maxRecipients
        section.maxSessions = reader.integer("MaxSessions", in: 1...Int.max) ?? section.maxSessions
        section.commandTimeout = reader.duration("CommandTimeout") ?? section.commandTimeout
        section.dataTimeout = reader.duration("DataTimeout") ?? section.dataTimeout
        section.stressThreshold = reader.percentage("StressThreshold") ?? section.stressThreshold
        section.stressCommandTimeout = reader.duration("StressCommandTimeout") ?? section.stressCommandTimeout
        section.stressDataTimeout = reader.duration("StressDataTimeout") ?? section.stressDataTimeout
        section.clientConnectionLimit = reader.integer("ClientConnectionLimit", in: 0...Int.max) ?? section.clientConnectionLimit
        section.clientConnectionRateLimit = reader.integer("ClientConnectionRateLimit", in: 0...Int.max)
            ?? section.clientConnectionRateLimit
        section.clientRateTimeUnit = reader.duration("ClientRateTimeUnit") ?? section.clientRateTimeUnit
        section.limitExempt = reader.networks("LimitExempt") ?? section.limitExempt
        if let actions = reader.actions("ProcessingErrors") {
            section.processingErrorsActions = actions
            section.processingErrors = actions.description
        }
        section.returnReject = reader.bool("ReturnReject") ?? section.returnReject
        section.softBounce = reader.bool("SoftBounce") ?? section.softBounce
        section.addReceivedHeader = reader.bool("AddReceivedHeader") ?? section.addReceivedHeader
        section.maxReceivedHeaders = reader.integer("MaxReceivedHeaders", in: 1...Int.max) ?? section.maxReceivedHeaders
        section.maxFilterPasses = reader.integer("MaxFilterPasses", in: 1...HeaderInspector.maxGuards - 1) ?? section.maxFilterPasses
        let certificate = reader.value("TLSCertificate")
        let key = reader.value("TLSKey")
        section.tlsCertificate = certificate.flatMap { $0.text.isEmpty ? nil : $0.text }
        section.tlsKey = key.flatMap { $0.text.isEmpty ? nil : $0.text }
        if (section.tlsCertificate == nil) != (section.tlsKey == nil), let raw = certificate ?? key {
            reader.report(line: raw.line, column: raw.keyColumn, "TLSCertificate and TLSKey must be given together")
        }
        // receiverd reads them at start; a file it cannot use must fail the check, not the start.
        if let raw = certificate, section.tlsCertificate != nil, let problem = checkPEM(raw.text, certificate: true) {
            reader.report(line: raw.line, column: raw.column, "TLSCertificate: \(problem)")
        }
        if let raw = key, section.tlsKey != nil, let problem = checkPEM(raw.text, certificate: false) {
            reader.report(line: raw.line, column: raw.column, "TLSKey: \(problem)")
        }
        return section
    }

    /// Labels of the private keys NIOSSL (BoringSSL) reads without a passphrase.
    package static let keyLabels: Set<String> = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"]

    /// Why `path` is not a PEM certificate chain (or private key), nil when it is one. Relative
    /// paths are relative to the working directory, as receiverd opens them.
    package static func checkPEM(_ path: String, certificate: Bool) -> String? {
        let text: String
        do { text = try TextFile.read(path) } catch { return error.description }
        if !certificate && text.contains("Proc-Type: 4,ENCRYPTED") {
            return "'\(path)' holds an encrypted private key: receiverd cannot ask for a passphrase (decrypt it with openssl pkey)"
        }
        let blocks: [PEM.Block]
        do { blocks = try PEM.blocks(text) } catch { return "'\(path)': \(error)" }
        if certificate {
            guard let first = blocks.first(where: { $0.label == "CERTIFICATE" }) else {
                let found = blocks.first.map { " (it holds \($0.label))" } ?? ""
                return "'\(path)' holds no PEM certificate (-----BEGIN CERTIFICATE-----)\(found)"
            }
            // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, … } (RFC 5280 §4.1)
            if PEM.derLength(first.der, at: PEM.derHeaderLength(first.der)) == nil {
                return "'\(path)': the CERTIFICATE on line \(first.line) is not an X.509 certificate"
            }
            return nil
        }
        if blocks.contains(where: { $0.label == "ENCRYPTED PRIVATE KEY" }) {
            return "'\(path)' holds an encrypted private key: receiverd cannot ask for a passphrase (decrypt it with openssl pkey)"
        }
        guard blocks.contains(where: { keyLabels.contains($0.label) }) else {
            let found = blocks.first.map { " (it holds \($0.label))" } ?? ""
            return "'\(path)' holds no PEM private key (-----BEGIN PRIVATE KEY-----)\(found)"
        }
        return nil
    }
}
