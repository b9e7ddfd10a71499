import NIOCore
import NIOSSL
import PosternSMTP

/// STARTTLS on a client connection (RFC 3207): the command, the handshake, EHLO again.
extension ClientConnection {
    /// What a STARTTLS attempt came to.
    package enum StartTLSOutcome {
        /// TLS is up and EHLO was said again inside it.
        case established(TLSSummary)
        /// The server answered something other than 220: the session goes on in clear.
        case refused(Reply)
        /// The handshake or the EHLO after it failed: the connection cannot be used.
        case failed(String)
    }

    /// What was negotiated, for the log line.
    package struct TLSSummary: Sendable {
        package var version: TLSVersion?
        package var cipherSuite: UInt16?
        package var peerCertificate: Bool
    }

    /// Sends STARTTLS and, after its 220, shakes hands with `tls` and says EHLO again. Errors
    /// thrown before the reply to STARTTLS are the connection's; from then on they are TLS's.
    package mutating func startTLS(channel: any Channel, tls: NIOSSLContext, serverHostname: String?) async throws -> StartTLSOutcome {
        let handshake = channel.eventLoop.makePromise(of: Void.self)
        tlsStarted = true
        do {
            try await channel.eventLoop.submit {
                let gate = StartTLSGate(context: tls, serverHostname: serverHostname, handshake: handshake)
                try channel.pipeline.syncOperations.addHandler(gate, position: .first)
            }.get()
        } catch {
            handshake.fail(error)
            throw error
        }
        try await send("STARTTLS\r\n")
        do {
            let reply = try await read()
            guard reply.code == 220 else { return .refused(reply) }
            try await handshake.futureResult.get()
            if let refusal = try await hello(fallback: false) {
                return .failed("\(lmtp ? "LHLO" : "EHLO") after STARTTLS refused: \(refusal)")
            }
        } catch {
            return .failed(ErrorText.describe(error))
        }
        let summary = try await channel.eventLoop.submit {
            let handler = try channel.pipeline.syncOperations.handler(type: NIOSSLClientHandler.self)
            let sniffer = try? channel.pipeline.syncOperations.handler(type: ServerHelloSniffer.self)
            return TLSSummary(version: handler.tlsVersion, cipherSuite: sniffer?.cipherSuite,
                              peerCertificate: handler.peerCertificate != nil)
        }.get()
        return .established(summary)
    }
}

extension ClientConnection.TLSSummary {
    /// Postfix's words: `Verified TLS connection established to …: TLSv1.3 with cipher
    /// TLS_AES_256_GCM_SHA384 (256/256 bits)`; "Untrusted" when the certificate was not
    /// checked, "Anonymous" when there was none.
    package func logLine(to peer: String, verified: Bool) -> String {
        let trust = verified ? "Verified" : (peerCertificate ? "Untrusted" : "Anonymous")
        return "\(trust) TLS connection established to \(peer): \(versionName) with cipher \(TLSCipherName.describe(cipherSuite))"
    }

    package var versionName: String {
        switch version {
        case .tlsv1: "TLSv1"
        case .tlsv11: "TLSv1.1"
        case .tlsv12: "TLSv1.2"
        case .tlsv13: "TLSv1.3"
        case nil: "TLS"
        }
    }
}
