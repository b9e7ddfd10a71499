import PosternPolicy
import PosternSMTP

/// Recipients of a message that go out in one transaction: same next hop and TLS policy, same
/// header fields.
package struct Transaction: Hashable {
    package let endpoint: Endpoint
    package let tls: TLSPolicy
    package let headers: [String]
}

/// One pool of connections per next hop and TLS policy.
package struct PoolKey: Hashable {
    package let endpoint: Endpoint
    package let tls: TLSPolicy
}
