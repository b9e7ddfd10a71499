import Logging
import NIOCore
import NIOSSL
import PosternPolicy
import PosternSMTP

/// What a new connection to a next hop needs beyond its address, taken from the configuration
/// in force when the connection is made (a SIGHUP applies to the next connection).
package struct NextHopPolicy: Sendable {
    package var tls: TLSPolicy
    /// nil when the TLS files could not be turned into a context (`contextError` says why).
    package var contexts: NextHopTLS.Contexts?
    package var contextError: String?
    package var serverHostname: String?
    package var credentials: SASLCredentials?
    /// The administrator allows credentials over a connection without TLS for this hop.
    package var authWithoutTLS: Bool

    package init(endpoint: Endpoint, tls: TLSPolicy, sender: SenderSection, cache: NextHopTLS) {
        self.tls = tls
        if tls != .none {
            do { contexts = try cache.contexts(for: sender) } catch { contextError = "\(error)" }
        }
        serverHostname = NextHopTLS.serverHostname(for: endpoint, configured: sender.tlsServerName)
        credentials = sender.authFile?.credentials(for: endpoint)
        authWithoutTLS = sender.authWithoutTLS.contains { $0.matches(endpoint) }
    }
}

/// How setting up a connection (after the greeting and EHLO) ended.
package enum NextHopSetup {
    /// Ready for mail.
    case ready
    /// Nothing can go to this hop now: defer every waiting job with this text.
    case deferAll(String)
    /// `may`: the TLS handshake failed; a new connection without STARTTLS will do.
    case retryInClear(String)
}

extension ClientConnection {
    /// STARTTLS as `policy.tls` wants it, then AUTH when the hop has credentials. Nothing is
    /// sent in clear after a failure where TLS is required, and credentials never go out in
    /// clear unless `AuthWithoutTLS` names the hop.
    /// - SeeAlso: Postfix smtp_proto.c (smtp_start_tls), smtp_sasl_proto.c
    package mutating func setUp(channel: any Channel, endpoint: Endpoint, policy: NextHopPolicy, inClear: Bool,
                        logger: Logger) async throws -> NextHopSetup {
        var secured = false
        if policy.tls != .none && !inClear {
            if !offers("STARTTLS") {
                if policy.tls.requiresTLS { return .deferAll("4.7.4 TLS is required, but was not offered by \(endpoint)") }
            } else if let tls = policy.contexts?.context(for: policy.tls) {
                switch try await startTLS(channel: channel, tls: tls, serverHostname: policy.serverHostname) {
                case .established(let summary):
                    logger.info("\(summary.logLine(to: "\(endpoint)", verified: policy.tls == .verify))")
                    secured = true
                case .refused(let reply):
                    if policy.tls.requiresTLS { return .deferAll("4.7.5 TLS is required, but \(endpoint) refused STARTTLS: \(reply)") }
                    logger.notice("\(endpoint) refused STARTTLS (\(reply)); going on in clear text")
                case .failed(let why):
                    if policy.tls.requiresTLS { return .deferAll("4.7.5 Cannot start TLS with \(endpoint): \(why)") }
                    return .retryInClear(why)
                }
            } else {
                let why = "TLS cannot be used: \(policy.contexts?.verifyingError ?? policy.contextError ?? "unknown error")"
                if policy.tls.requiresTLS { return .deferAll("4.7.5 \(why)") }
                logger.error("\(why); going on in clear text")
            }
        }
        guard let credentials = policy.credentials else { return .ready }
        guard secured || policy.authWithoutTLS else {
            return .deferAll("4.7.0 credentials for \(endpoint) are only sent over TLS, and this connection has none"
                             + " (list the next hop in [Sender] AuthWithoutTLS to allow it)")
        }
        switch try await authenticate(credentials) {
        case .authenticated(let mechanism):
            logger.info("authenticated to \(endpoint) as \(credentials.username) (SASL \(mechanism.rawValue))")
        case .notOffered:
            logger.notice("\(endpoint) does not offer AUTH; going on without it")
        case .noMechanism(let offered):
            return .deferAll("4.7.0 cannot authenticate to \(endpoint): no mechanism available (it offers \(offered); Postern speaks PLAIN and LOGIN)")
        case .refused(let reply):
            // A wrong password is a configuration error: defer, as Postfix's
            // smtp_sasl_auth_soft_bounce does, rather than bounce every message.
            return .deferAll("SASL authentication failed; server \(endpoint) said: \(reply)")
        }
        return .ready
    }
}
