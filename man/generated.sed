# Applied by `make dist` to the pages swift-argument-parser's generate-manual writes.
# A blank line in a command's discussion separates paragraphs: mdoc wants .Pp there.
s/^$/.Pp/
