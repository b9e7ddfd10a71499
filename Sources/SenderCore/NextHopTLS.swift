import NIOConcurrencyHelpers
import NIOSSL
import PosternPolicy
import PosternSMTP
import PosternUtil

/// senderd's TLS client contexts, built from the PEM files `[Sender]` loaded and rebuilt only
/// when a reload brings different files: building one parses the whole CA bundle.
package final class NextHopTLS: Sendable {
    /// The files a context is built from.
    package struct Material: Hashable, Sendable {
        package var caFile: PEMFile?
        package var certificate: PEMFile?
        package var key: PEMFile?

        package init(_ sender: SenderSection) {
            caFile = sender.tlsCAFile
            certificate = sender.tlsCertificate
            key = sender.tlsKey
        }
    }

    /// One context that checks nothing (`may`, `encrypt`) and one that verifies (`verify`).
    package struct Contexts: Sendable {
        package let unverified: NIOSSLContext
        /// nil when there are no trust anchors: no `TLSCAFile` and no system store (a minimal
        /// container); only `verify` needs them, so only `verify` deliveries are deferred.
        package let verifying: NIOSSLContext?
        package let verifyingError: String?

        package func context(for policy: TLSPolicy) -> NIOSSLContext? {
            policy == .verify ? verifying : unverified
        }
    }

    private let cache = NIOLockedValueBox<(material: Material, contexts: Contexts)?>(nil)

    /// The contexts for `sender`'s files, built on first use and after the files changed.
    package func contexts(for sender: SenderSection) throws -> Contexts {
        let material = Material(sender)
        return try cache.withLockedValue { cached in
            if let cached, cached.material == material { return cached.contexts }
            let fresh = try NextHopTLS.makeContexts(material)
            cached = (material, fresh)
            return fresh
        }
    }

    package static func makeContexts(_ m: Material) throws -> Contexts {
        var base = TLSConfiguration.makeClientConfiguration()
        if let certificate = m.certificate, let key = m.key {
            base.certificateChain = try NIOSSLCertificate.fromPEMBytes(certificate.bytes).map { .certificate($0) }
            base.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: key.bytes, format: .pem))
        }
        var unverified = base
        // Opportunistic TLS protects against reading, not against a man in the middle
        // (RFC 7435): any certificate will do, as with Postfix's may and encrypt levels.
        unverified.certificateVerification = .none
        unverified.trustRoots = .certificates([])   // nothing to load, nothing to fail
        var verifying = base
        verifying.certificateVerification = .fullVerification
        if let ca = m.caFile {
            // The CA file replaces the system's store: a private CA must not also mean
            // trusting every public one for an internal hop.
            verifying.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(ca.bytes))
            return Contexts(unverified: try NIOSSLContext(configuration: unverified),
                            verifying: try NIOSSLContext(configuration: verifying), verifyingError: nil)
        }
        let open = try NIOSSLContext(configuration: unverified)
        do {
            return Contexts(unverified: open, verifying: try NIOSSLContext(configuration: verifying), verifyingError: nil)
        } catch {
            return Contexts(unverified: open, verifying: nil,
                            verifyingError: "no system trust store to verify with (\(error)); set [Sender] TLSCAFile")
        }
    }

    /// The name sent as SNI and, under `verify`, looked for in the certificate: the route's host
    /// name; for an address (callback mode) or a socket, `[Sender] TLSServerName`, and without
    /// it nil, which makes swift-nio-ssl match the peer's address against the certificate's
    /// IP entries.
    package static func serverHostname(for endpoint: Endpoint, configured: String?) -> String? {
        if case .inet(let host, _) = endpoint.location, IPAddress(host) == nil { return host }
        return configured
    }
}
