import ArgumentParser
import Glibc
import PosternSpool

/// The messages a command acts on, as postsuper takes them: queue ids, `ALL`, or `-` for ids
/// read from standard input (separated by white space, one per line as `mailq`-like tools
/// print them). Every id is checked before anything is done: a path (`../x`, `/etc/passwd`),
/// an empty or overlong argument never reaches the file system.
struct IDArguments: ParsableArguments {
    @Argument(help: ArgumentHelp(
        "Queue ids (20 characters); ALL for every message the command applies to; - to read ids from standard input.",
        valueName: "id"))
    var ids: [String] = []

    /// The ids asked for, upper-cased and checked; `all` lists every message for `ALL`.
    func resolve(all: () throws -> [String]) throws -> [String] {
        try IDArguments.resolve(ids, all: all)
    }

    /// One id (`show`): checked like the others; ALL and - make no sense there.
    static func single(_ id: String) throws -> String {
        guard id != "ALL" && id != "-" else { throw CtlError(.usage, "give one queue id") }
        return try resolve([id]) { [] }[0]
    }

    static func resolve(_ ids: [String], all: () throws -> [String]) throws -> [String] {
        guard !ids.isEmpty else { throw CtlError(.usage, "no queue id given: give ids, ALL, or - to read ids from standard input") }
        if ids.contains("ALL") {
            guard ids.count == 1 else { throw CtlError(.usage, "ALL cannot be combined with queue ids") }
            return try all()
        }
        var wanted: [String] = []
        for argument in ids {
            if argument == "-" { wanted += IDArguments.readStandardInput() } else { wanted.append(argument) }
        }
        let invalid = wanted.filter { !QueueID.isValid(IDArguments.normalized($0)) }
        if let first = invalid.first {
            let more = invalid.count > 1 ? " (and \(invalid.count - 1) more)" : ""
            throw CtlError(.dataErr, "invalid queue id '\(printable(first, limit: 40))'\(more): a queue id is 20 characters of 0-9 and A-Z; nothing was changed")
        }
        var seen = Set<String>()
        return wanted.map(IDArguments.normalized).filter { seen.insert($0).inserted }
    }

    /// Crockford base-32 is case-insensitive: `k15cb…` is `K15CB…`.
    static func normalized(_ id: String) -> String {
        String(id.unicodeScalars.map { $0.value >= 0x61 && $0.value <= 0x7A ? Character(Unicode.Scalar($0.value - 32)!) : Character($0) })
    }

    static func readStandardInput() -> [String] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self)
            .split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).map(String.init)
    }
}

/// `--state STATE` (repeatable): which spool directories a command looks at, out of `allowed`.
func parseStates(_ names: [String], allowed: [SpoolState]) throws -> [SpoolState]? {
    guard !names.isEmpty else { return nil }
    return try names.map { name in
        guard let state = SpoolState(rawValue: name.lowercased()), allowed.contains(state) else {
            throw CtlError(.usage, "--state \(printable(name, limit: 40)): expected one of \(allowed.map(\.rawValue).joined(separator: ", "))")
        }
        return state
    }
}
