import PosternUtil
/// One `NAME:LOOKUP` of a condition.
package struct Term: Sendable {
    /// Which piece of the context a term looks at.
    package enum Kind: Sendable, Hashable {
        case from, rcpt, any, clientIP, clientPort, serverIP, helo, xforwardAddr, mailProtocol
        case size, score, block
        case header(String)     // lower-cased field name

        /// How the default lookup and `file:` interpret values.
        package enum ValueClass { case address, ip, name, number }

        package init?(name: String) {
            switch name {
            case "from", "sender": self = .from
            case "to", "rcpt": self = .rcpt
            case "any": self = .any
            case "client-ip": self = .clientIP
            case "client-port": self = .clientPort
            case "server-ip": self = .serverIP
            case "helo": self = .helo
            case "xforward-addr": self = .xforwardAddr
            case "protocol": self = .mailProtocol
            case "size": self = .size
            case "score": self = .score
            case "block": self = .block
            case "header": self = .header("")
            default: return nil
            }
        }

        package var valueClass: ValueClass {
            switch self {
            case .from, .rcpt, .any: .address
            case .clientIP, .serverIP, .xforwardAddr: .ip
            case .clientPort, .size, .score: .number
            case .helo, .mailProtocol, .block, .header: .name
            }
        }
    }

    /// How the value is tested.
    package enum Test: Sendable {
        case lookup(Matcher)
        case compare(Comparison)
    }

    package var kind: Kind
    package var test: Test

    package func evaluate(_ context: RuleContext) -> Truth {
        switch kind {
        case .from: return match(context.from)
        case .rcpt: return match(context.rcpt)
        case .any: return match(context.from) || match(context.rcpt)
        case .clientIP: return match(context.clientIP)
        case .serverIP: return match(context.serverIP)
        case .xforwardAddr: return match(context.xforwardAddr)
        case .helo: return match(context.helo)
        case .mailProtocol: return match(context.mailProtocol)
        case .clientPort: return compare(context.clientPort.map(Double.init))
        case .size: return compare(context.size.map(Double.init))
        case .score: return compare(context.score)
        case .block:
            guard let blocks = context.blocks, case .lookup(let matcher) = test else { return .unknown }
            return Truth(blocks.contains { matcher.matches($0) })
        case .header(let name):
            guard let headers = context.headers, case .lookup(let matcher) = test else { return .unknown }
            return Truth(headers.contains {
                ASCII.equal($0.name, lowered: name) && matcher.matches(Self.unfolded($0.value))
            })
        }
    }

    @inline(__always)
    private func match(_ value: String?) -> Truth {
        guard let value, case .lookup(let matcher) = test else { return .unknown }
        return Truth(matcher.matches(value))
    }

    @inline(__always)
    private func compare(_ value: Double?) -> Truth {
        guard let value, case .compare(let comparison) = test else { return .unknown }
        return Truth(comparison.holds(value))
    }

    /// RFC 5322 §2.2.3 unfolding plus trimming; copies only when there is something to do.
    package static func unfolded(_ value: String) -> String {
        let utf8 = value.utf8
        guard let first = utf8.first, let last = utf8.last else { return value }
        let needsWork = ASCII.isSpace(first) || ASCII.isSpace(last) || last == 0x0A || last == 0x0D
            || utf8.contains { $0 == 0x0A || $0 == 0x0D }
        guard needsWork else { return value }
        return ASCII.trim(String(decoding: utf8.filter { $0 != 0x0A && $0 != 0x0D }, as: UTF8.self))
    }
}

/// `size:>10m`, `score:>=5`, `client-port:<1024`.
package struct Comparison: Sendable, Hashable {
    package enum Operator: String, Sendable, CaseIterable {
        // Longest first, so `>=` is not read as `>` followed by `=5`.
        case greaterOrEqual = ">=", lessOrEqual = "<=", notEqual = "!=", greater = ">", less = "<", equal = "="
    }

    package var op: Operator
    package var value: Double

    @inline(__always)
    package func holds(_ actual: Double) -> Bool {
        switch op {
        case .equal: actual == value
        case .notEqual: actual != value
        case .less: actual < value
        case .lessOrEqual: actual <= value
        case .greater: actual > value
        case .greaterOrEqual: actual >= value
        }
    }
}
