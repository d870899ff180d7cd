// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Ballot",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Consensus", targets: ["Consensus"]),
        .library(name: "Raft", targets: ["Raft"]),
        .library(name: "Simulation", targets: ["Simulation"]),
        .library(name: "Storage", targets: ["Storage"]),
        .executable(name: "ballot-sim", targets: ["ballot-sim"]),
        .executable(name: "ballot-bench", targets: ["ballot-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        // Pure: shared consensus vocabulary. Imports only the standard library.
        .target(name: "Consensus"),
        // Pure: the Raft state machine. Imports only Consensus.
        .target(name: "Raft", dependencies: ["Consensus"]),
        // LMDB from Debian's liblmdb-dev, linked as a system library (no vendored copy).
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        // Durable storage: the MVCC key-value store on LMDB (WAL and snapshots to come).
        .target(name: "Storage", dependencies: ["Consensus", "CLMDB"]),
        // Deterministic cluster simulator and checkers; drives the real cores.
        .target(name: "Simulation", dependencies: ["Consensus", "Raft"]),
        .executableTarget(
            name: "ballot-sim",
            dependencies: [
                "Simulation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "ballot-bench",
            dependencies: [
                "Consensus", "Raft", "Storage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "RaftTests", dependencies: ["Consensus", "Raft"], exclude: ["testdata"]),
        .testTarget(name: "SimulationTests", dependencies: ["Consensus", "Raft", "Simulation"]),
        .testTarget(name: "StorageTests", dependencies: ["Consensus", "Storage"]),
    ],
    swiftLanguageModes: [.v6]
)
