// swift-tools-version:6.1
import PackageDescription

// Postern's modules, lowest layer first; each may import only those listed as its
// dependencies (docs/architecture.md):
//
//   PosternUtil      system calls, text, addresses, logging: nothing of mail
//   PosternSMTP      the SMTP/LMTP codec: commands, replies, data, headers (NIOCore only)
//   PosternMIME      MIME walking, RFC 2047/2231, transfer encodings, 8-bit to 7-bit
//   PosternSpool     queue files, envelopes, verdicts, DSNs, the loop guard, quarantine store
//   PosternPolicy    configuration, rules and routing
//   PosternScanning  the plug-ins and the decision engine
//   PosternRuntime   daemon plumbing: listeners, IPC transport, metrics, systemd
//   ReceiverCore, ScannerCore, SenderCore: each daemon's logic; receiverd, scannerd and
//   senderd are thin executables over them. posternctl links no runtime it does not use.

let nio = "swift-nio"

func product(_ name: String, _ package: String) -> Target.Dependency {
    .product(name: name, package: package)
}

let package = Package(
    name: "Postern",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "receiverd", targets: ["receiverd"]),
        .executable(name: "scannerd", targets: ["scannerd"]),
        .executable(name: "senderd", targets: ["senderd"]),
        .executable(name: "posternctl", targets: ["posternctl"]),
        // For Fuzz/Package.swift, which builds the libFuzzer binary apart from this package.
        .library(name: "FuzzHarness", targets: ["FuzzHarness"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
    ],
    targets: [
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        .target(name: "CPosternShims"),

        .target(name: "PosternUtil", dependencies: ["CPosternShims", product("Logging", "swift-log")]),
        .target(name: "PosternSMTP", dependencies: [
            "PosternUtil", product("NIOCore", nio), product("Crypto", "swift-crypto"),
        ]),
        .target(name: "PosternMIME", dependencies: ["PosternUtil", product("NIOCore", nio)]),
        .target(name: "PosternSpool", dependencies: [
            "PosternSMTP", "PosternMIME", "PosternUtil", "CPosternShims", product("Crypto", "swift-crypto"),
            product("NIOCore", nio), product("NIOConcurrencyHelpers", nio),
        ]),
        .target(name: "PosternPolicy", dependencies: ["PosternSpool", "PosternSMTP", "PosternMIME", "PosternUtil", product("NIOCore", nio)]),
        .target(name: "PosternScanning", dependencies: [
            "PosternPolicy", "PosternSpool", "PosternMIME", "PosternSMTP", "PosternUtil", "CZlib", "CPosternShims",
            product("NIOCore", nio), product("NIOConcurrencyHelpers", nio), product("NIOHTTP1", nio), product("NIOEmbedded", nio),
            product("Logging", "swift-log"),
        ]),
        .target(name: "PosternRuntime", dependencies: [
            "PosternPolicy", "PosternSpool", "PosternSMTP", "PosternUtil", "CSystemd",
            product("NIOCore", nio), product("NIOPosix", nio), product("NIOHTTP1", nio), product("NIOConcurrencyHelpers", nio),
            product("Logging", "swift-log"), product("Prometheus", "swift-prometheus"),
            product("ServiceLifecycle", "swift-service-lifecycle"), product("UnixSignals", "swift-service-lifecycle"),
        ]),

        .target(name: "ReceiverCore", dependencies: [
            "PosternRuntime", "PosternPolicy", "PosternSpool", "PosternSMTP", "PosternUtil",
            product("NIOCore", nio), product("NIOPosix", nio), product("NIOConcurrencyHelpers", nio), product("NIOSSL", "swift-nio-ssl"),
            product("Logging", "swift-log"), product("Prometheus", "swift-prometheus"),
            product("ServiceLifecycle", "swift-service-lifecycle"),
        ]),
        .target(name: "ScannerCore", dependencies: [
            "PosternRuntime", "PosternScanning", "PosternPolicy", "PosternSpool", "PosternMIME", "PosternSMTP", "PosternUtil",
            product("NIOCore", nio), product("NIOPosix", nio), product("NIOConcurrencyHelpers", nio),
            product("Logging", "swift-log"), product("Prometheus", "swift-prometheus"),
            product("ServiceLifecycle", "swift-service-lifecycle"),
        ]),
        .target(name: "SenderCore", dependencies: [
            "PosternRuntime", "PosternPolicy", "PosternSpool", "PosternMIME", "PosternSMTP", "PosternUtil",
            product("NIOCore", nio), product("NIOPosix", nio), product("NIOConcurrencyHelpers", nio),
            product("NIOSSL", "swift-nio-ssl"), product("NIOTLS", nio),
            product("Logging", "swift-log"), product("Prometheus", "swift-prometheus"),
            product("ServiceLifecycle", "swift-service-lifecycle"),
        ]),

        .executableTarget(name: "receiverd", dependencies: [
            "ReceiverCore", "PosternRuntime", "PosternPolicy", "PosternUtil", product("ArgumentParser", "swift-argument-parser"),
        ]),
        .executableTarget(name: "scannerd", dependencies: [
            "ScannerCore", "PosternRuntime", "PosternPolicy", "PosternUtil", product("ArgumentParser", "swift-argument-parser"),
        ]),
        .executableTarget(name: "senderd", dependencies: [
            "SenderCore", "PosternRuntime", "PosternPolicy", "PosternUtil", product("ArgumentParser", "swift-argument-parser"),
        ]),
        // No PosternRuntime: the admin tool needs neither libsystemd nor the daemons' event loops.
        .executableTarget(name: "posternctl", dependencies: [
            "PosternScanning", "PosternPolicy", "PosternSpool", "PosternSMTP", "PosternUtil", "CPosternShims",
            product("ArgumentParser", "swift-argument-parser"), product("NIOCore", nio), product("NIOSSL", "swift-nio-ssl"),
        ]),

        // The fuzz targets' logic over every parser of outside input: libFuzzer runs it from
        // Fuzz/, FuzzHarnessTests replays the corpus and the regressions through it.
        .target(name: "FuzzHarness", dependencies: [
            "PosternScanning", "PosternPolicy", "PosternSpool", "PosternMIME", "PosternSMTP", "PosternUtil", "CZlib",
            product("NIOCore", nio), product("NIOEmbedded", nio),
        ]),

        .target(name: "PosternTestSupport", dependencies: ["PosternSpool", "PosternPolicy", "PosternUtil", product("NIOCore", nio)],
                path: "Tests/PosternTestSupport"),
        .testTarget(name: "PosternUtilTests", dependencies: [
            "PosternUtil", "PosternTestSupport", product("Crypto", "swift-crypto")
        ]),
        .testTarget(name: "PosternSMTPTests", dependencies: [
            "PosternSMTP", "PosternUtil", "PosternMIME", "PosternTestSupport", product("NIOCore", nio), product("NIOTestUtils", nio),
        ]),
        .testTarget(name: "PosternMIMETests", dependencies: [
            "PosternMIME", "PosternUtil", "PosternTestSupport", product("NIOCore", nio)
        ]),
        .testTarget(name: "PosternSpoolTests", dependencies: [
            "PosternSpool", "PosternSMTP", "PosternMIME", "PosternUtil", "PosternTestSupport", product("Crypto", "swift-crypto"), product("NIOCore", nio),
            product("NIOConcurrencyHelpers", nio), product("NIOPosix", nio),
        ]),
        .testTarget(name: "PosternPolicyTests", dependencies: [
            "PosternPolicy", "PosternSpool", "PosternSMTP", "PosternMIME", "PosternUtil", "PosternTestSupport", product("NIOCore", nio)
        ]),
        .testTarget(name: "PosternScanningTests", dependencies: [
            "PosternScanning", "PosternPolicy", "PosternSpool", "PosternSMTP", "PosternMIME", "PosternUtil", "PosternTestSupport", product("NIOCore", nio), product("NIOPosix", nio),
        ]),
        .testTarget(name: "ReceiverCoreTests", dependencies: [
            "ReceiverCore", "PosternRuntime", "PosternPolicy", "PosternSpool", "PosternSMTP", "PosternUtil", "PosternTestSupport",
            product("NIOCore", nio), product("NIOEmbedded", nio), product("NIOPosix", nio), product("NIOConcurrencyHelpers", nio),
            product("Logging", "swift-log"),
        ]),
        .testTarget(name: "FuzzHarnessTests", dependencies: ["FuzzHarness"]),
        .testTarget(name: "ScannerCoreTests", dependencies: [
            "ScannerCore", "PosternScanning", "PosternPolicy", "PosternSpool", "PosternMIME", "PosternSMTP", "PosternUtil",
            "PosternTestSupport", product("NIOCore", nio),
        ]),
        .testTarget(name: "SenderCoreTests", dependencies: [
            "SenderCore", "PosternPolicy", "PosternSpool", "PosternSMTP", "PosternUtil", "PosternTestSupport",
            product("NIOCore", nio), product("NIOEmbedded", nio), product("Logging", "swift-log"),
        ]),
        .testTarget(name: "PosternRuntimeTests", dependencies: [
            "PosternRuntime", "PosternPolicy", "PosternSpool", "PosternSMTP", "PosternUtil", "PosternTestSupport", product("NIOCore", nio), product("NIOPosix", nio),
            product("NIOConcurrencyHelpers", nio), product("Logging", "swift-log"),
        ]),
    ]
)
