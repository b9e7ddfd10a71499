import PosternPolicy
/// The `bannedNames` and `bannedContentTypes` globs, compiled once per configuration.
package struct BanList: Sendable {
    package let names: [NameGlob]
    package let types: [NameGlob]

    package init(_ settings: AttachmentsSettings) {
        names = settings.bannedNames.map(NameGlob.init)
        types = settings.bannedContentTypes.map(NameGlob.init)
    }

    /// Checks the last path component of `fileName`, and that component without trailing dots
    /// and spaces, which Windows drops when it saves a file (`evil.exe.` runs as `evil.exe`).
    package func isBanned(name fileName: String) -> Bool {
        guard !names.isEmpty else { return false }
        var name = Array(fileName.lowercased().unicodeScalars)
        if let cut = name.lastIndex(where: { $0 == "/" || $0 == "\\" }) { name.removeSubrange(...cut) }
        if names.contains(where: { $0.matches(lowered: name) }) { return true }
        var trimmed = name
        while let last = trimmed.last, last == "." || last == " " { trimmed.removeLast() }
        return trimmed.count != name.count && names.contains { $0.matches(lowered: trimmed) }
    }

    package func isBanned(contentType: String) -> Bool {
        guard !types.isEmpty else { return false }
        let type = Array(contentType.unicodeScalars)
        return types.contains { $0.matches(lowered: type) }
    }
}
