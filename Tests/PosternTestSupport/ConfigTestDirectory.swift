import Glibc

/// A fresh temporary directory with files, removed by `remove()`; Glibc only, like the library.
package struct ConfigTestDirectory {
    package let path: String

    package init() {
        var template = Array("/tmp/postern-test-XXXXXX".utf8CString)
        path = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    }

    @discardableResult
    package func write(_ name: String, _ text: String) -> String {
        let file = path + "/" + name
        let stream = fopen(file, "w")!
        fputs(text, stream)
        fclose(stream)
        return file
    }

    package func remove() {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { unlink(path + "/" + name) }
            }
            closedir(directory)
        }
        rmdir(path)
    }
}
