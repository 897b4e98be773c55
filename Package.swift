// swift-tools-version:6.0
import PackageDescription

// Linux only: the HTTP server calls Glibc directly.
// Layers, bottom to top: C libraries (COpenBLAS, CBAMKernels, CJPEG, CPNG) → the engine and image I/O (no HTTP)
// → HTTP without I/O (HTTPCore) → the HTTP server (no model) → the service that joins them → the `cbam-serve` executable.
let package = Package(
    name: "cbam-serve",
    products: [
        .executable(name: "cbam-serve", targets: ["cbam-serve"]),
        .library(name: "CBAMEngine", targets: ["CBAMEngine"]),
        .library(name: "HTTPServer", targets: ["HTTPServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C libraries
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .target(name: "CJPEG", path: "Sources/CJPEG", linkerSettings: [.linkedLibrary("jpeg")]),
        .target(name: "CPNG", path: "Sources/CPNG", linkerSettings: [.linkedLibrary("png16")]),

        // The engine's C kernels: a GEMM on prepacked weights, AVX-512 / AVX2 + FMA / portable, chosen at run time.
        .target(name: "CBAMKernels"),

        // The CBAM-ResNet engine: checkpoints, kernels, forward pass. No I/O beyond reading a model directory.
        .target(name: "CBAMEngine", dependencies: ["COpenBLAS", "CBAMKernels"]),
        // Image bytes → RGB pixels → the model's input tensor; PNG encoding for heat-maps.
        .target(name: "CBAMImage", dependencies: ["CJPEG", "CPNG"]),
        // HTTP/1.1 without I/O: request and response types, the parser, multipart, query strings, errors, JSON bodies.
        .target(name: "HTTPCore"),
        // HTTP/1.1 on POSIX sockets and Dispatch: listener, connections, router. Knows nothing of models.
        .target(name: "HTTPServer", dependencies: ["HTTPCore", .product(name: "Logging", package: "swift-log")]),
        // The inference service: batching queue, REST and Open Inference Protocol routes, metrics.
        .target(name: "CBAMService", dependencies: [
            "CBAMEngine", "CBAMImage", "HTTPServer",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .executableTarget(name: "cbam-serve", dependencies: [
            "CBAMEngine", "CBAMImage", "CBAMService", "HTTPServer",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        // A tiny server to load-test HTTPServer alone (docs/http-performance.md); not part of the product.
        .executableTarget(name: "http-bench", dependencies: [
            "HTTPServer", .product(name: "Logging", package: "swift-log"),
        ]),
        // Times the engine's forward pass (tools/bench_engine.py runs it beside PyTorch and ONNX Runtime).
        .executableTarget(name: "cbam-bench", dependencies: [
            "CBAMEngine", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "CBAMEngineTests", dependencies: ["CBAMEngine", "CBAMKernels"], resources: [.copy("Fixtures")]),
        .testTarget(name: "CBAMImageTests", dependencies: ["CBAMImage"], resources: [.copy("Fixtures")]),
        .testTarget(name: "HTTPCoreTests", dependencies: ["HTTPCore"]),
        .testTarget(name: "HTTPServerTests", dependencies: ["HTTPServer"]),
        .testTarget(name: "CBAMServiceTests", dependencies: ["CBAMService", "CBAMEngine", "CBAMImage", "HTTPServer"],
                    resources: [.copy("Fixtures")]),
    ]
)
