// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Ballot",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Consensus", targets: ["Consensus"]),
        .library(name: "Raft", targets: ["Raft"]),
        .library(name: "Simulation", targets: ["Simulation"]),
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
                "Consensus", "Raft",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "RaftTests", dependencies: ["Consensus", "Raft"], exclude: ["testdata"]),
        .testTarget(name: "SimulationTests", dependencies: ["Consensus", "Raft", "Simulation"]),
    ],
    swiftLanguageModes: [.v6]
)
