// swift-tools-version:6.1
// The libFuzzer binary, apart from the main package so that its normal build never sees it.
// Built by tools/fuzz.sh with -sanitize=fuzzer,address; the harness logic is the main
// package's FuzzHarness library, which the unit tests run too.
import PackageDescription

let package = Package(
    name: "PosternFuzz",
    dependencies: [
        .package(name: "Postern", path: ".."),
    ],
    targets: [
        .target(name: "CLibFuzzer"),
        .executableTarget(
            name: "postern-fuzz",
            dependencies: ["CLibFuzzer", .product(name: "FuzzHarness", package: "Postern")]
        ),
    ]
)
