#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import PosternUtil

extension MIMEWalk {
    /// The line at `start`: where its content ends (before CRLF or LF) and where the next begins.
    @inline(__always)
    package func lineBounds(from start: Int) -> (end: Int, next: Int) {
        let n = buffer.count
        guard start < n, let base = buffer.baseAddress,
              let hit = memchr(base + start, 0x0A, n - start) else { return (n, n) }
        let newline = UnsafeRawPointer(hit) - UnsafeRawPointer(base)
        let end = newline > start && buffer[newline - 1] == 0x0D ? newline - 1 : newline
        return (end, newline + 1)
    }

    /// The first delimiter line of an open multipart at or after `start`. Only lines starting
    /// with `--` are compared; the rest is skipped with memchr.
    package func nextDelimiter(from start: Int) -> Delimiter? {
        var line = start
        let n = buffer.count
        while line < n {
            if buffer[line] == 0x2D, let d = delimiter(at: line) { return d }
            line = lineBounds(from: line).next
        }
        return nil
    }

    /// delimiter := "--" boundary ["--"] *LWSP CRLF (RFC 2046 §5.1.1), matched exactly after
    /// trailing white space is dropped, as Thunderbird and Python do; innermost multipart first.
    package func delimiter(at line: Int) -> Delimiter? {
        guard !boundaries.isEmpty, line + 1 < buffer.count, buffer[line] == 0x2D, buffer[line + 1] == 0x2D else { return nil }
        let (contentEnd, next) = lineBounds(from: line)
        var end = contentEnd
        while end > line + 2, ASCII.isSpace(buffer[end - 1]) { end -= 1 }
        let length = end - line - 2
        for level in boundaries.indices.reversed() {
            let boundary = boundaries[level]
            if length == boundary.count, matches(boundary, at: line + 2) {
                return Delimiter(lineStart: line, next: next, level: level, isClose: false)
            }
            if length == boundary.count + 2, buffer[end - 1] == 0x2D, buffer[end - 2] == 0x2D, matches(boundary, at: line + 2) {
                return Delimiter(lineStart: line, next: next, level: level, isClose: true)
            }
        }
        return nil
    }

    @inline(__always)
    private func matches(_ boundary: [UInt8], at start: Int) -> Bool {
        for (offset, byte) in boundary.enumerated() where buffer[start + offset] != byte { return false }
        return true
    }

    /// The CRLF before a delimiter belongs to the delimiter (RFC 2046 §5.1.1), not to the body.
    package func bodyEnd(before line: Int, notBefore start: Int) -> Int {
        var end = line
        if end > start, buffer[end - 1] == 0x0A { end -= 1 }
        if end > start, buffer[end - 1] == 0x0D { end -= 1 }
        return max(end, start)
    }
}
