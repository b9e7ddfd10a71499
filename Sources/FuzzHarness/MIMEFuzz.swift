import PosternMIME
import PosternPolicy
import PosternScanning

/// A whole message as the attachments plug-in sees it: the MIME walk, every part's names and
/// decoded body, then the plug-in itself (nested encoded messages, zips by name and magic).
///
/// Invariants: every part's body lies inside the message and after the previous part's;
/// depths stay within the limit; a decode limit gives a prefix of the full decoding; the
/// plug-in finishes with a verdict of its own (no error before the deadline).
enum MIMEFuzz {
    /// Keeps one run short: the expansion limits are what is tested, not 100 MiB of zeros.
    static let settings = AttachmentsSettings(maxExpandedSize: 4 << 20)

    static func run(_ data: UnsafeRawBufferPointer) throws(FuzzFailure) {
        let message = [UInt8](data)
        let parts = MIMEParser().parts(of: message)
        var previousEnd = 0
        for part in parts {
            let range = part.bodyRange
            try expect(range.lowerBound >= 0 && range.upperBound <= message.count, "body \(range) outside a \(message.count)-octet message")
            try expect(range.lowerBound >= previousEnd, "part bodies overlap or go backwards: \(range) after \(previousEnd)")
            previousEnd = range.upperBound
            try expect(part.depth >= 0 && part.depth <= MIMEDefaults.maxDepth, "depth \(part.depth)")
            try expect(!part.contentType.isEmpty, "empty content type")
            let full = part.decodedBody()
            let head = part.decodedBody(limit: 4)
            try expect(head.count <= 4 && full.starts(with: head), "decodedBody(limit: 4) is not a prefix of the body")
            try expect(full.count <= range.count, "decoding made \(full.count) octets of \(range.count)")
            for name in part.fileNames { try expect(!name.isEmpty, "an empty file name") }
        }
        let request = ScanRequest(queueID: "fuzz", message: message)
        let finding: Finding
        do {
            finding = try AttachmentsPlugin(settings: settings).scan(request, deadline: .now + .seconds(600))
        } catch {
            throw FuzzFailure("the attachments plug-in failed: \(error.message)")
        }
        try expect(["clean", AttachmentsPlugin.banned, AttachmentsPlugin.archiveBomb].contains(finding.verdict),
                   "verdict \(finding.verdict)")
        try expect(finding.names.count <= AttachmentsDefaults.maxReportedNames, "\(finding.names.count) names reported")
    }
}
