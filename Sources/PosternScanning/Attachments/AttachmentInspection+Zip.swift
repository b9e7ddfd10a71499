import PosternPolicy
extension AttachmentInspection {
    /// Checks every member's names, extracts members within the limits, and recurses into
    /// members that are zips. A zip that cannot be read is an ordinary file: its name was checked
    /// by the caller, and the detail says why its insides were not.
    ///
    /// An encrypted member cannot be looked into: its names are checked, and an archive inside
    /// it is not opened (it cannot be), so neither its members nor its depth count.
    package mutating func inspectArchive(_ bytes: [UInt8], path: String, depth: Int) throws(PluginError) {
        let reader: ZipReader
        let entries: [ZipEntry]
        let allowance = max(0, settings.maxArchiveFiles - members)
        do {
            reader = try ZipReader(bytes)
            entries = try reader.entries(max: allowance)
        } catch {
            note("\(path): not a readable zip (\(error.hint))")
            return
        }
        archives += 1
        if reader.entryCount > allowance { bomb("\(path) (over \(settings.maxArchiveFiles) archive members)") }
        var archiveRoom = Self.ratioCap(bytes.count, settings.maxExpansionRatio)
        for entry in entries {
            try checkDeadline()
            members += 1
            let memberPath = path + "/" + entry.name
            for name in [entry.name] + entry.alternateNames where bans.isBanned(name: name) {
                banned.append(path + "/" + name)
            }
            guard !entry.isDirectory, !exhausted else { continue }
            guard !entry.isEncrypted else { note("\(memberPath): encrypted, not looked into"); continue }
            // A zip's name is tried as well as its magic, as data may be prepended; only the
            // magic counts against the depth, as a member past it is not extracted whole.
            guard let data = try extract(entry, from: reader, path: memberPath, archive: path,
                                         archiveRoom: &archiveRoom, depth: depth),
                  data.starts(with: Self.zipMagic) || (depth < settings.maxArchiveDepth && Self.isZipName(entry.name))
            else { continue }
            if depth >= settings.maxArchiveDepth {
                bomb("\(memberPath) (archive nesting over \(settings.maxArchiveDepth))")
            } else {
                try inspectArchive(data, path: memberPath, depth: depth + 1)
            }
        }
    }

    /// The member's bytes, whole when it may be an archive to open, else its first four; nil
    /// when it must not or cannot be extracted (reported as a bomb or noted). Declared sizes
    /// refuse early; the inflate cap enforces the same limits on what the data really holds.
    private mutating func extract(_ entry: ZipEntry, from reader: ZipReader, path: String, archive: String,
                                  archiveRoom: inout Int, depth: Int) throws(PluginError) -> [UInt8]? {
        let ratio = settings.maxExpansionRatio
        let entryCap = Self.ratioCap(entry.compressedSize, ratio)
        let budget = max(0, settings.maxExpandedSize - expanded)
        if entry.uncompressedSize > entryCap { bomb("\(path) (expansion ratio over \(ratio))"); return nil }
        if entry.uncompressedSize > budget { bomb("\(path) (\(overExpandedSize))"); return nil }
        let cap = min(entryCap, budget, archiveRoom)
        let opens = depth < settings.maxArchiveDepth
        do {
            var out = try reader.extract(entry, cap: cap, keep: opens && Self.isZipName(entry.name) ? .max : 4, deadline: deadline)
            if opens, out.bytes.count < out.size, out.bytes.starts(with: Self.zipMagic) {
                out = try reader.extract(entry, cap: cap, deadline: deadline)
            }
            expanded += out.size
            archiveRoom -= out.size
            return out.bytes
        } catch {
            switch error.code {
            case .outputLimit where cap == entryCap: bomb("\(path) (expansion ratio over \(ratio))")
            case .outputLimit where cap == budget: bomb("\(path) (\(overExpandedSize))")
            case .outputLimit: bomb("\(archive) (expansion ratio over \(ratio))")
            case .deadline: throw PluginError("attachments: deadline passed")
            default: note("\(path): \(error.hint)")
            }
            return nil
        }
    }

    private var overExpandedSize: String {
        let size = settings.maxExpandedSize
        return size % (1 << 20) == 0 ? "expanded size over \(size >> 20) MiB" : "expanded size over \(size) bytes"
    }

    /// `size × ratio`, at least ``AttachmentsDefaults/ratioFloor``, without overflow.
    package static func ratioCap(_ size: Int, _ ratio: Int) -> Int {
        let (product, overflow) = size.multipliedReportingOverflow(by: ratio)
        return max(overflow ? .max : product, AttachmentsDefaults.ratioFloor)
    }
}
