import PosternSMTP

/// SMTP AUTH on a client connection (RFC 4954), PLAIN or LOGIN through ``SASLClient``. The
/// lines sent carry the password: they go to the socket and nowhere else.
extension ClientConnection {
    /// What an AUTH attempt came to.
    package enum AuthOutcome: Equatable {
        case authenticated(SASLClient.Mechanism)
        /// The server does not offer AUTH: the session goes on without it (as Postfix does).
        case notOffered
        /// It offers AUTH, but neither PLAIN nor LOGIN.
        case noMechanism(offered: String)
        /// It refused the credentials or the exchange.
        case refused(Reply)
    }

    package mutating func authenticate(_ credentials: SASLCredentials) async throws -> AuthOutcome {
        guard let offered = extensions["AUTH"] else { return .notOffered }
        guard let mechanism = SASLClient.choose(offered: offered) else { return .noMechanism(offered: offered) }
        var sasl = SASLClient(mechanism: mechanism, credentials: credentials)
        try await send(sasl.start())
        while true {
            switch sasl.next(try await read()) {
            case .send(let line): try await send(line)
            case .done: return .authenticated(mechanism)
            case .failed(let reply): return .refused(reply)
            }
        }
    }
}
