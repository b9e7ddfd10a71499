extension ASCII {
    /// Makes text safe for one line of a log, a header field or a terminal: each Unicode
    /// scalar `unsafe` picks becomes `replacement`, and past `limit` scalars the text is cut
    /// and ends in `…`. The one scrubber for peers' and senders' text; hot paths that only
    /// swap bytes use ``replacing(_:where:with:)``.
    package static func oneLine(_ text: some StringProtocol, replacing unsafe: (Unicode.Scalar) -> Bool = isControlOrDelete,
                                with replacement: Unicode.Scalar = "?", limit: Int = .max) -> String {
        var out = String.UnicodeScalarView()
        for (n, scalar) in text.unicodeScalars.enumerated() {
            if n == limit { return String(out) + "…" }
            out.append(unsafe(scalar) ? replacement : scalar)
        }
        return String(out)
    }

    /// C0 controls and DEL: what may not stand in a line of text.
    package static func isControlOrDelete(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || scalar.value == 0x7F
    }

    /// Anything but printable ASCII (space to tilde): for scanners' replies, which are ASCII.
    package static func isNotPrintable(_ scalar: Unicode.Scalar) -> Bool {
        scalar.value < 0x20 || scalar.value >= 0x7F
    }
}
