/// The last failed delivery attempt of one route: what the next hop (or the connection) said,
/// and when. senderd writes one per undelivered route after the verdict, so that
/// `posternctl queue list` can say why a message waits.
/// - SeeAlso: docs/spool-format.md ("Delivery errors")
public struct DeliveryError: Sendable, Hashable {
    /// When the attempt ended, seconds since the epoch.
    public var time: Double
    /// The reply (`451 4.3.0 …`) or the local reason (`connection refused`), one line.
    public var text: String

    public init(time: Double, text: String) {
        self.time = time
        self.text = text
    }

    /// A reply text is bounded so that the file's tail stays small to read for every listing.
    public static let maximumText = 400

    /// The section after the verdict: each route's last error, then the routes whose sender
    /// has had its delay DSN (`warned`, so that a restarted senderd does not send it again).
    /// ```
    /// errors = *("error" SP route-index SP time SP text LF) *("warned" SP route-index SP time LF)
    ///          "end errors" LF
    /// ```
    package static func write(_ errors: [Int: DeliveryError], warned: [Int: Double] = [:]) -> String {
        var s = ""
        for (route, e) in errors.sorted(by: { $0.key < $1.key }) {
            s += "error \(route) \(e.time) \(SpoolText.clean(String(e.text.prefix(maximumText))))\n"
        }
        for (route, time) in warned.sorted(by: { $0.key < $1.key }) { s += "warned \(route) \(time)\n" }
        return s + "end errors\n"
    }

    /// The `warned` lines: when each route's delay DSN was written, by route index. Lines
    /// that do not parse, or name a route the verdict does not have, are skipped.
    package static func parseWarnings(_ lines: [Substring], routes: Int) -> [Int: Double] {
        var warned: [Int: Double] = [:]
        for line in lines {
            let f = line.split(separator: " ", omittingEmptySubsequences: false)
            guard f.count == 3, f[0] == "warned", let route = Int(f[1]), route >= 0, route < routes,
                  let time = Double(f[2]) else { continue }
            warned[route] = time
        }
        return warned
    }

    /// Lines that do not parse, or name a route the verdict does not have, are skipped: the
    /// texts are for people, and a later minor version may add other lines here.
    package static func parse(_ lines: [Substring], routes: Int) -> [Int: DeliveryError] {
        var errors: [Int: DeliveryError] = [:]
        for line in lines {
            let f = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: false)
            guard f.count == 4, f[0] == "error", let route = Int(f[1]), route >= 0, route < routes,
                  let time = Double(f[2]) else { continue }
            errors[route] = DeliveryError(time: time, text: String(f[3]))
        }
        return errors
    }
}
