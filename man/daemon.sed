# Applied by `make dist` to receiverd.8, scannerd.8 and senderd.8: they have no subcommands,
# but generate-manual still lists argument-parser's implicit `help` subcommand.
/^\.Ar subcommand$/d
/^\.It Em help$/,/^\.El$/d
