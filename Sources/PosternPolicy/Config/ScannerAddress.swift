import Glibc

/// Where a scanner daemon listens (`[ClamAV] Address = inet:3310@10.0.0.1 weight=2`), and its
/// share of the first connection attempts when several are listed.
/// - SeeAlso: ``ScannerSocket/connect(to:service:deadline:)``
public struct ScannerAddress: Sendable, Hashable, CustomStringConvertible {
    /// A TCP host and port or a unix-domain socket.
    public enum Location: Sendable, Hashable {
        /// A unix-domain socket.
        case unix(path: String)
        /// A host name, IPv4 or IPv6 literal (without brackets), and a port.
        case inet(host: String, port: Int)
    }

    public var location: Location
    /// Relative share of first attempts; the configuration allows 1–1000.
    public var weight: Int

    public init(location: Location, weight: Int = 1) {
        self.location = location
        self.weight = weight
    }

    /// Postern's address syntax, as in ``Endpoint``: `inet:3310@[::1]`, `local:/run/clamd.ctl`.
    public var description: String {
        switch location {
        case .inet(let host, let port): host.contains(":") ? "inet:\(port)@[\(host)]" : "inet:\(port)@\(host)"
        case .unix(let path): "local:\(path)"
        }
    }

    /// The order in which to try `addresses`: each next one is drawn with probability weight /
    /// (sum of the weights left), so load follows the weights and every address is a fallback
    /// for the others. Weights below 1 come last, in list order.
    public static func failoverOrder(_ addresses: [ScannerAddress], using generator: inout some RandomNumberGenerator) -> [ScannerAddress] {
        var left = addresses.filter { $0.weight > 0 }
        var order: [ScannerAddress] = []
        // One address needs no draw (a getrandom(2) per scan, for nothing).
        while left.count > 1 {
            var draw = Int.random(in: 0..<left.reduce(0) { $0 + $1.weight }, using: &generator)
            let i = left.firstIndex { draw -= $0.weight; return draw < 0 }!
            order.append(left.remove(at: i))
        }
        return order + left + addresses.filter { $0.weight <= 0 }
    }
}
