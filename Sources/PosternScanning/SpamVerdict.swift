import PosternPolicy
import PosternUtil
/// The verdict and the header fields of both spam plug-ins, the same whichever scanner is
/// used, so that filters on `X-Spam-Flag` or `X-Spam-Status` keep working after a switch.
package struct SpamVerdict {
    /// RFC 5322 §2.1.1: a line is at most 998 octets. We do not fold (a finding's header is one
    /// line), so the test list is cut to fit.
    package static let lineLimit = 998

    package var score: Double
    package var threshold: Double
    package var unconditionalThreshold: Double?
    package var tests: [String]
    /// Digits after the point in the headers: spamd reports one, rspamd more.
    package var decimals: Int

    package var verdict: FindingVerdict {
        if let unconditionalThreshold, score >= unconditionalThreshold { return .unconditionalSpam }
        return score >= threshold ? .spam : .clean
    }

    package func finding(plugin: String) -> Finding {
        let verdict = self.verdict
        let isSpam = verdict != .clean
        let score = Self.format(self.score, decimals: decimals)
        let required = Self.format(threshold, decimals: decimals)
        let head = "X-Spam-Status: \(isSpam ? "Yes" : "No"), score=\(score) required=\(required) tests="
        var headers = [head + Self.testList(tests, room: Self.lineLimit - head.utf8.count), "X-Spam-Score: \(score)"]
        if isSpam { headers.append("X-Spam-Flag: YES") }
        var detail = "\(verdict): score \(score), required \(required)"
        if let unconditionalThreshold { detail += ", unconditional \(Self.format(unconditionalThreshold, decimals: decimals))" }
        // spamd writes -0.0 for a message that hit only zero-score rules.
        return Finding(plugin: plugin, verdict: verdict, score: self.score + 0, headers: headers, detail: detail)
    }

    /// `A,B,C` in at most `room` octets, ending in `,...` when names had to be left out;
    /// `none` when there are none (SpamAssassin's spelling). Names are made printable.
    package static func testList(_ tests: [String], room: Int) -> String {
        let names = tests.map { printable($0, excluding: [",", " "]) }.filter { !$0.isEmpty }
        guard !names.isEmpty else { return "none" }
        var list = ""
        for (i, name) in names.enumerated() {
            let next = list.isEmpty ? name : list + "," + name
            let reserve = i == names.count - 1 ? 0 : 4
            guard next.utf8.count + reserve <= room else { return list.isEmpty ? "..." : list + ",..." }
            list = next
        }
        return list
    }

    /// Printable ASCII only: a scanner's text must not break a header field or a log line.
    package static func printable(_ text: some StringProtocol, excluding: Set<Character> = []) -> String {
        ASCII.oneLine(text, replacing: { ASCII.isNotPrintable($0) || excluding.contains(Character($0)) }, with: "_")
    }

    /// `score` with `decimals` digits after the point, rounded half away from zero, without
    /// Foundation: `1000.0`, `-0.10`.
    package static func format(_ value: Double, decimals: Int) -> String {
        var scale: Int64 = 1
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * Double(scale)).rounded()
        guard value.isFinite, scaled < 1e15 else { return "\(value)" }
        let n = Int64(scaled)
        let fraction = String(n % scale)
        let sign = value < 0 && n != 0 ? "-" : ""
        guard decimals > 0 else { return sign + String(n) }
        return sign + String(n / scale) + "." + String(repeating: "0", count: decimals - fraction.count) + fraction
    }
}
