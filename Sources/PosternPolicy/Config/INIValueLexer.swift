import PosternUtil
/// A syntax error inside one line, at a byte index of that line.
package struct INISyntaxError: Error {
    package var index: Int
    package var message: String
}

/// Lexes the value after `Key =`: quotes, trailing comments, commas.
///
/// ```
/// value   = *(quoted / CHAR) [WSP comment]
/// quoted  = DQUOTE *(qchar / "\" DQUOTE / "\\") DQUOTE   ; other backslashes stay literal,
///                                                        ; so regexes like "\d" need no doubling
/// ```
package enum INIValueLexer {
    package struct Item {
        package var text: String
        package var start: Int
        package var missing: Bool
    }

    package struct Lexed {
        package var text: String
        package var start: Int
        package var items: [Item]
    }

    package static func lex(_ line: [UInt8], from start: Int) throws(INISyntaxError) -> Lexed {
        var whole: [UInt8] = [], wholeEnd = 0, wholeStart: Int?
        var item: [UInt8] = [], itemEnd = 0, itemStart: Int?, itemQuoted = false
        var items: [Item] = []
        var index = start
        func flush(at position: Int) {
            items.append(Item(text: String(decoding: item[..<itemEnd], as: UTF8.self),
                              start: itemStart ?? position, missing: itemEnd == 0 && !itemQuoted))
            item = []; itemEnd = 0; itemStart = nil; itemQuoted = false
        }
        while index < line.count {
            let byte = line[index]
            if byte == 0x22 {
                let (content, next) = try unquote(line, at: index)
                if itemStart == nil { itemStart = index + 1 }
                if wholeStart == nil { wholeStart = index + 1 }
                item += content; itemEnd = item.count; itemQuoted = true
                whole += content; wholeEnd = whole.count
                index = next
                continue
            }
            if (byte == 0x3B || byte == 0x23) && (index == start || ASCII.isSpace(line[index - 1])) { break }
            if byte == 0x2C {
                flush(at: index)
                whole.append(byte); wholeEnd = whole.count
            } else if ASCII.isSpace(byte) {
                if !item.isEmpty { item.append(byte) }
                if !whole.isEmpty { whole.append(byte) }
            } else {
                if itemStart == nil { itemStart = index }
                if wholeStart == nil { wholeStart = index }
                item.append(byte); itemEnd = item.count
                whole.append(byte); wholeEnd = whole.count
            }
            index += 1
        }
        flush(at: index)
        if items.count == 1 && items[0].missing { items = [] }
        return Lexed(text: String(decoding: whole[..<wholeEnd], as: UTF8.self), start: wholeStart ?? index, items: items)
    }

    /// Reads a quoted string starting at `start` (the opening quote); returns the content and
    /// the index after the closing quote.
    package static func unquote(_ line: [UInt8], at start: Int) throws(INISyntaxError) -> ([UInt8], Int) {
        var content: [UInt8] = []
        var index = start + 1
        while index < line.count {
            let byte = line[index]
            if byte == 0x5C && index + 1 < line.count && (line[index + 1] == 0x22 || line[index + 1] == 0x5C) {
                content.append(line[index + 1])
                index += 2
            } else if byte == 0x22 {
                return (content, index + 1)
            } else {
                content.append(byte)
                index += 1
            }
        }
        throw INISyntaxError(index: start, message: "unterminated quoted string")
    }

    /// End of a line's content: before a trailing comment outside quotes, trailing space trimmed.
    package static func contentEnd(_ line: [UInt8], from start: Int) -> Int {
        var index = start
        var quoted = false
        var end = line.count
        while index < line.count {
            let byte = line[index]
            if quoted {
                if byte == 0x5C && index + 1 < line.count { index += 1 } else if byte == 0x22 { quoted = false }
            } else if byte == 0x22 {
                quoted = true
            } else if (byte == 0x3B || byte == 0x23) && index > start && ASCII.isSpace(line[index - 1]) {
                end = index
                break
            }
            index += 1
        }
        while end > start && ASCII.isSpace(line[end - 1]) { end -= 1 }
        return end
    }
}
