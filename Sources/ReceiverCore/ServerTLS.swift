import Logging
import NIOConcurrencyHelpers
import NIOSSL
import PosternPolicy

/// The certificate and key for STARTTLS (`[Receiver] TLSCertificate`, `TLSKey`), loaded at start
/// and again on every reload (SIGHUP), so that a renewed certificate is served without a
/// restart. Each session takes the context in force when it begins; one that cannot be loaded
/// on reload leaves the old one in force.
package final class ServerTLS: Sendable {
    private let box: NIOLockedValueBox<NIOSSLContext?>

    package init(_ context: NIOSSLContext?) {
        box = NIOLockedValueBox(context)
    }

    /// The context for new sessions; nil: STARTTLS is not offered.
    package var context: NIOSSLContext? { box.withLockedValue { $0 } }

    /// A server context from the PEM files `certificate` (the chain) and `key`.
    package static func load(certificate: String, key: String) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
        let configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: key, format: .pem)))
        return try NIOSSLContext(configuration: configuration)
    }

    /// After a reload: the files `config` names, read again. Returns false (logged, the old
    /// context kept) when they cannot be loaded.
    @discardableResult
    package func reload(_ config: PosternConfig, logger: Logger) -> Bool {
        guard let certificate = config.receiver.tlsCertificate, let key = config.receiver.tlsKey else {
            if box.withLockedValue({ $0 }) != nil { logger.notice("TLSCertificate removed: STARTTLS is no longer offered") }
            box.withLockedValue { $0 = nil }
            return true
        }
        do {
            let fresh = try Self.load(certificate: certificate, key: key)
            box.withLockedValue { $0 = fresh }
            logger.info("TLS certificate loaded from \(certificate)")
            return true
        } catch {
            logger.error("reload: cannot load TLSCertificate \(certificate) / TLSKey \(key): \(error); STARTTLS keeps the certificate it had")
            return false
        }
    }
}
