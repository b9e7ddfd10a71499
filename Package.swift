// swift-tools-version:6.1
import PackageDescription

var daemonDependencies: [Target.Dependency] {
    [
        "Shared",
        .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "Logging", package: "swift-log"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
    ]
}

let package = Package(
    name: "Postern",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "receiverd", targets: ["receiverd"]),
        .executable(name: "scannerd", targets: ["scannerd"]),
        .executable(name: "senderd", targets: ["senderd"]),
        .executable(name: "posternctl", targets: ["posternctl"]),
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
        .target(
            name: "Shared",
            dependencies: [
                "CSystemd", "CPosternShims", "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .executableTarget(name: "receiverd", dependencies: daemonDependencies + [.product(name: "NIOSSL", package: "swift-nio-ssl")]),
        .executableTarget(name: "scannerd", dependencies: daemonDependencies),
        .executableTarget(name: "senderd", dependencies: daemonDependencies + [
            .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "NIOTLS", package: "swift-nio"),
        ]),
        .executableTarget(name: "posternctl", dependencies: daemonDependencies + [.product(name: "NIOSSL", package: "swift-nio-ssl")]),
        .testTarget(
            name: "SharedTests",
            dependencies: [
                "Shared",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
            ]
        ),
    ]
)

