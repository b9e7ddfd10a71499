// postern-fuzz TARGET [libFuzzer options and corpus directories]
//
// One binary for every target (one link of an instrumented build, not eighteen): the first
// argument names the target, the rest goes to libFuzzer as it is. POSTERN_FUZZ_TARGET names
// it instead when set (then every argument is libFuzzer's).
import CLibFuzzer
import FuzzHarness
#if canImport(Glibc)
import Glibc
#endif

/// To fd 2 directly: Glibc's `stderr` is a global Swift 6 will not touch.
func printError(_ text: String) {
    var text = text
    text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
}

func usage() -> Never {
    var text = "usage: postern-fuzz TARGET [libFuzzer options] [corpus directories]\ntargets:\n"
    for target in FuzzTargets.all { text += "  \(target.name)\t\(target.summary)\n" }
    printError(text)
    exit(2)
}

/// libFuzzer runs itself again for -minimize_crash, -merge, -fork and -jobs, with its own
/// options only: the target travels in the environment.
let targetVariable = "POSTERN_FUZZ_TARGET"

let arguments = CommandLine.arguments
var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
let name: String
if let inherited = getenv(targetVariable) {
    name = String(cString: inherited)
} else {
    guard arguments.count >= 2, !arguments[1].hasPrefix("-") else { usage() }
    if arguments[1] == "list" {
        for target in FuzzTargets.all { print(target.name) }
        exit(0)
    }
    name = arguments[1]
    setenv(targetVariable, name, 1)
    // libFuzzer sees argv without the target name.
    argc -= 1
    argv![1] = argv![0]
    argv = argv! + 1
}
guard let selected = FuzzTargets.named(name) else { usage() }

/// The target libFuzzer's callback runs; set once before the driver starts.
nonisolated(unsafe) var current = selected

let callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt = { data, size in
    do {
        try current.run(UnsafeRawBufferPointer(start: data, count: size))
    } catch {
        // A broken invariant is a finding like a crash: libFuzzer saves the input.
        printError("postern-fuzz \(current.name): invariant failed: \(error)\n")
        abort()
    }
    return 0
}

exit(LLVMFuzzerRunDriver(&argc, &argv, callback))
