import PosternPolicy
import PosternSMTP

/// Where the fuzzed configuration claims to live: relative `file:` lookups resolve under a
/// directory that does not exist, so they fail fast without touching the disk.
let fuzzConfigPath = "/nonexistent-postern-fuzz/postern.conf"

/// An absolute `file:`/`rfile:` lookup would read whatever it names (`/dev/zero` up to 64 MiB,
/// a FIFO for ever): such inputs are skipped. An administrator's own paths are not a threat.
func readsAbsoluteFile(_ bytes: [UInt8]) -> Bool {
    containsFolded(bytes, "file:/") || containsFolded(bytes, "file:\"/")
}

/// Every error of a refused configuration points at a line and column of the file and reads
/// as one line, `file:line:column: message`.
func checkErrors(_ errors: ConfigErrors, lineCount: Int) throws(FuzzFailure) {
    try expect(!errors.errors.isEmpty, "a refused configuration without an error")
    for error in errors.errors {
        try expect(error.line >= 1 && error.line <= lineCount, "error at line \(error.line) of \(lineCount): \(show(error.description))")
        try expect(error.column >= 1, "error at column \(error.column): \(show(error.description))")
        try expect(!error.message.isEmpty, "an error without a message")
    }
}

/// The configuration file as `posternctl config check` and every daemon's start and SIGHUP
/// read it.
/// Invariants: no crash; a refused file has errors that point into it; an accepted one has
/// rules that resolve every parameter they set without a crash.
enum ConfigFuzz {
    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        let bytes = [UInt8](data)
        guard !readsAbsoluteFile(bytes) else { return }
        let text = String(decoding: bytes, as: UTF8.self)
        let lineCount = text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).count
        let config: PosternConfig
        do {
            config = try PosternConfig.parse(text, path: fuzzConfigPath)
        } catch {
            return try checkErrors(error, lineCount: lineCount)
        }
        try RulesFuzz.resolveAll(config.rules)
    }
}

/// A rules file (`posternctl rules test --rules FILE`): rule lines, `[Rule:NAME]` groups.
/// Invariants: as for the configuration; every parameter resolves in contexts where nothing,
/// or everything, is known about the message.
enum RulesFuzz {
    static let contexts = [
        RuleContext(),
        RuleContext(from: "", rcpt: "postmaster", clientIP: "::ffff:192.0.2.7", clientPort: 0, serverIP: "::1",
                    helo: "", xforwardAddr: "not an address", mailProtocol: "lmtp", size: 0, headers: [], score: -0.0, blocks: []),
        RuleContext(from: "A@Example.ORG", rcpt: "b@example.net", clientIP: "10.1.2.3", clientPort: 65535, serverIP: "127.0.0.1",
                    helo: "mx.example.org", xforwardAddr: "2001:db8::1", mailProtocol: "smtp", size: 10 << 20,
                    headers: [HeaderField(name: "Subject", value: "hello\0 world"), HeaderField(name: "X-Spam-Flag", value: "YES")],
                    score: 12.5, blocks: ["Eicar-Test-Signature", "evil.exe"]),
    ]

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        let bytes = [UInt8](data)
        guard !readsAbsoluteFile(bytes) else { return }
        let text = String(decoding: bytes, as: UTF8.self)
        let lineCount = text.utf8.split(separator: 0x0A, omittingEmptySubsequences: false).count
        let rules: RuleSet
        do {
            rules = try RuleSet.parse(text, path: fuzzConfigPath)
        } catch {
            return try checkErrors(error, lineCount: lineCount)
        }
        try resolveAll(rules)
    }

    static func resolveAll(_ rules: RuleSet) throws(FuzzFailure) {
        for context in contexts {
            for rule in rules.rules { _ = rule.evaluate(context) }
            for name in rules.parameterNames {
                let resolution = rules.resolve(name, in: context)
                try expect(resolution.trace.count <= rules.rules.count, "\(resolution.trace.count) trace entries for \(rules.rules.count) rules")
                if let setting = resolution.setting { try expect(resolution.value == setting.value, "resolved value is not the setting's") }
            }
        }
    }
}
