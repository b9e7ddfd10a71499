/// Why a message with 8-bit octets cannot be made 7-bit for a next hop without 8BITMIME.
/// Its recipients fail with `554 5.6.3` (RFC 3463: conversion required but not supported) and
/// the hint as the reply text.
/// - SeeAlso: RFC 6152 §3, RFC 3463 §3.7
public struct EightBitRefusal: Error, Sendable, Hashable, CustomStringConvertible {
    public enum Reason: Sendable, Hashable {
        /// Header fields have no transfer encoding; rewriting them as RFC 2047 words (RFC 6857)
        /// would change what signatures and mail readers see.
        case headerField
        /// multipart/signed or multipart/encrypted: a changed part breaks the signature (RFC 1847 §2.1).
        case sealed
        /// A multipart or message body that cannot carry encoded parts: RFC 2045 §6.4 forbids
        /// encoding a composite entity, or its structure cannot be told apart.
        case composite
        /// A transfer encoding we do not know (x-uuencode…): re-encoding it would lose it.
        case unknownEncoding
        /// Nested deeper than ``EightBitDefaults/maxDepth``.
        case tooDeep
    }

    public var reason: Reason
    public var hint: String

    public init(_ reason: Reason, _ hint: String) {
        self.reason = reason
        self.hint = hint
    }

    public var description: String { hint }
}
