import PosternMIME
import PosternScanning

/// A zip as the attachments plug-in opens it: end record, central directory, local headers,
/// stored and deflated members, then the plug-in on a message carrying the zip.
///
/// Invariants: extraction never produces more than its cap (declared sizes are not trusted)
/// and returns at most `keep` octets, a prefix of the whole member; offsets point inside the
/// archive; the plug-in ends with a verdict of its own.
enum ZipFuzz {
    static let cap = 1 << 20
    /// Members looked at directly; the plug-in below sees them all.
    static let maxMembers = 64

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        let bytes = [UInt8](data)
        if let reader = try? ZipReader(bytes) {
            try expect(reader.entryCount >= 0 && reader.prependedLength >= 0 && reader.prependedLength <= bytes.count,
                       "entry count \(reader.entryCount), prepended \(reader.prependedLength)")
            let entries = (try? reader.entries(max: maxMembers)) ?? []
            try expect(entries.count <= min(maxMembers, reader.entryCount), "\(entries.count) entries of \(reader.entryCount)")
            for entry in entries {
                try expect(entry.compressedSize >= 0 && entry.uncompressedSize >= 0, "negative size in \(show(entry.name))")
                guard let whole = try? reader.extract(entry, cap: cap) else { continue }
                try expect(whole.size <= cap && whole.bytes.count == whole.size, "member of \(whole.size) octets, \(whole.bytes.count) kept, cap \(cap)")
                if let head = try? reader.extract(entry, cap: cap, keep: 4) {
                    try expect(head.size == whole.size && head.bytes.count <= 4 && whole.bytes.starts(with: head.bytes),
                               "keep: 4 is not a prefix of the member")
                }
                if whole.size > 0 {
                    do {
                        _ = try reader.extract(entry, cap: whole.size - 1)
                        throw FuzzFailure("a \(whole.size)-octet member passed a cap of \(whole.size - 1)")
                    } catch let failure as FuzzFailure {
                        throw failure
                    } catch {
                        // over the cap: as it should be
                    }
                }
            }
        }
        try attached(bytes)
    }

    /// The zip attached to a message, base64-encoded, named so that it is opened.
    static func attached(_ zip: [UInt8]) throws(FuzzFailure) {
        var body: [UInt8] = []
        TransferEncoding.base64(zip[...], into: &body)
        let head = """
            From: a@example.org\r
            MIME-Version: 1.0\r
            Content-Type: multipart/mixed; boundary="zz"\r
            \r
            --zz\r
            Content-Type: application/zip; name="fuzz.zip"\r
            Content-Transfer-Encoding: base64\r
            \r

            """
        let message = Array(head.utf8) + body + Array("\r\n--zz--\r\n".utf8)
        let finding: Finding
        do {
            finding = try AttachmentsPlugin(settings: MIMEFuzz.settings)
                .scan(ScanRequest(queueID: "fuzz", message: message), deadline: .now + .seconds(600))
        } catch {
            throw FuzzFailure("the attachments plug-in failed on the zip: \(error.message)")
        }
        try expect(["clean", AttachmentsPlugin.banned, AttachmentsPlugin.archiveBomb].contains(finding.verdict), "verdict \(finding.verdict)")
    }
}
