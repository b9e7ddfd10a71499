import FuzzHarness
import Glibc
import Testing

/// Every seed in `Fuzz/Corpus/TARGET/` and every reproducer of a past finding in
/// `Fuzz/Regressions/TARGET/`, run through the same harness libFuzzer runs, in the ordinary
/// test run: a fixed parser stays fixed without an instrumented build.
@Suite struct FuzzReplayTests {
    /// `Fuzz/` of this checkout: this file is `Tests/FuzzHarnessTests/FuzzReplayTests.swift`.
    static let fuzzDirectory: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<path.lastIndex(of: "/")!]) }
        return path + "/Fuzz"
    }()

    @Test(arguments: FuzzTargets.all.map(\.name))
    func replay(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        let seeds = Self.files(in: "Corpus/\(name)")
        #expect(!seeds.isEmpty, "no seed corpus for \(name)")
        for path in seeds + Self.files(in: "Regressions/\(name)") {
            let bytes = try #require(Self.read(path), "cannot read \(path)")
            do {
                try target.run(bytes)
            } catch {
                Issue.record("\(path): \(error)")
            }
        }
    }

    /// A directory for a target that no longer exists would be skipped in silence.
    @Test func everyDirectoryIsATarget() {
        for kind in ["Corpus", "Regressions"] {
            for name in Self.entries(Self.fuzzDirectory + "/" + kind) {
                #expect(FuzzTargets.named(name) != nil, "Fuzz/\(kind)/\(name) names no fuzz target")
            }
        }
    }

    static func files(in relative: String) -> [String] {
        let directory = fuzzDirectory + "/" + relative
        return entries(directory).filter { !$0.hasPrefix(".") && $0 != "README.md" }.sorted().map { directory + "/" + $0 }
    }

    static func entries(_ directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    static func read(_ path: String) -> [UInt8]? {
        guard let file = fopen(path, "rb") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            bytes += buffer[..<n]
            if n < buffer.count { return ferror(file) == 0 ? bytes : nil }
        }
    }
}
