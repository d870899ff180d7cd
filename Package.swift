// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Ballot",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Consensus", targets: ["Consensus"]),
        .library(name: "Raft", targets: ["Raft"]),
        .library(name: "MultiPaxos", targets: ["MultiPaxos"]),
        .library(name: "Replica", targets: ["Replica"]),
        .library(name: "Engines", targets: ["Engines"]),
        .library(name: "Simulation", targets: ["Simulation"]),
        .library(name: "Storage", targets: ["Storage"]),
        .library(name: "StateMachine", targets: ["StateMachine"]),
        .library(name: "EtcdAPI", targets: ["EtcdAPI"]),
        .library(name: "Server", targets: ["Server"]),
        .library(name: "BallotClient", targets: ["Client"]),
        .executable(name: "ballot", targets: ["ballot"]),
        .executable(name: "ballot-sim", targets: ["ballot-sim"]),
        .executable(name: "ballot-bench", targets: ["ballot-bench"]),
        .executable(name: "ballotctl", targets: ["ballotctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        // bcrypt for etcd's user passwords (its HummingbirdBcrypt target builds OpenBSD's C code alone).
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth", from: "2.5.0"),
        // etcd's JWT auth tokens (--auth-token jwt,...).
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
    ],
    targets: [
        // Pure: shared consensus vocabulary. Imports only the standard library.
        .target(name: "Consensus"),
        // Pure: the Raft state machine. Imports only Consensus.
        .target(name: "Raft", dependencies: ["Consensus"]),
        // Pure: the Multi-Paxos state machine. Imports only Consensus.
        .target(name: "MultiPaxos", dependencies: ["Consensus"]),
        // The engine a member runs, chosen at start (`--engine`): either core behind one type.
        .target(name: "Engines", dependencies: ["Consensus", "Raft", "MultiPaxos"]),
        // The Ready contract, run once for every engine and every shell.
        .target(name: "Replica", dependencies: ["Consensus"]),
        // LMDB from Debian's liblmdb-dev, linked as a system library (no vendored copy).
        .systemLibrary(name: "CLMDB", pkgConfig: "lmdb", providers: [.apt(["liblmdb-dev"])]),
        // Durable storage: the MVCC key-value store on LMDB (WAL and snapshots to come).
        // SHA-256 names keys too long for an LMDB key (KeyEncoding).
        // CRC-32C in the CPU's instruction (C: Swift cannot reach it); the WAL sums every record.
        .target(name: "CCRC32C"),
        .target(name: "CMallocTuning"),
        .target(name: "Storage", dependencies: ["Consensus", "CLMDB", "CCRC32C", .product(name: "Crypto", package: "swift-crypto")]),
        // Deterministic cluster simulator and checkers; drives the real cores,
        // the real Ready loop and the server's state machine on a real MVCC store.
        .target(name: "Simulation", dependencies: ["Consensus", "Raft", "MultiPaxos", "Engines", "Replica", "Storage", "EtcdAPI", "StateMachine"]),
        // etcd's v3 API (etcdserverpb, mvccpb, authpb) and Ballot's peer protocol:
        // code generated once by scripts/generate-protos.sh and committed.
        .target(
            name: "EtcdAPI",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            exclude: ["protos"]
        ),
        // The replicated state machine: etcd's requests from the log applied to
        // the MVCC store (Applier), and etcd's errors and message conversions.
        // The server's apply thread and the simulator both run it.
        .target(
            name: "StateMachine",
            dependencies: [
                "Consensus", "Storage", "EtcdAPI",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The shell around a core: node loop, peer transport, etcd's gRPC services, metrics.
        .target(
            name: "Server",
            dependencies: [
                "Consensus", "Raft", "MultiPaxos", "Engines", "Replica", "Storage", "EtcdAPI", "StateMachine",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                // The JSON gateway calls the member's own gRPC server in process, as etcd's calls its own.
                .product(name: "GRPCInProcessTransport", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                // etcd's gRPC on HTTP/2 frames directly (API/GRPCWire): unary KV calls answered without grpc-swift's per-stream machinery.
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Crypto", package: "swift-crypto"),
                // TLS on client and peer URLs; certificates for --auto-tls.
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                // etcd's YAML --config-file.
                .product(name: "Yams", package: "Yams"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        .target(
            name: "Client",
            dependencies: [
                "EtcdAPI",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ]
        ),
        .executableTarget(
            name: "ballot",
            dependencies: [
                "Server",
                "CMallocTuning",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "ballotctl",
            dependencies: [
                "Client", "EtcdAPI", "Server",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "ballot-sim",
            dependencies: [
                "Simulation", "Raft", "MultiPaxos", "Engines", "Replica", "StateMachine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "ballot-bench",
            dependencies: [
                "Consensus", "Raft", "Storage", "EtcdAPI",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "RaftTests", dependencies: ["Consensus", "Raft"], exclude: ["testdata"]),
        .testTarget(name: "MultiPaxosTests", dependencies: ["Consensus", "MultiPaxos"]),
        .testTarget(name: "SimulationTests", dependencies: ["Consensus", "Raft", "MultiPaxos", "Engines", "Replica", "Simulation", "StateMachine"]),
        .testTarget(name: "StorageTests", dependencies: ["Consensus", "Storage"]),
        .testTarget(name: "StateMachineTests", dependencies: ["Consensus", "Storage", "StateMachine", "EtcdAPI"]),
        // End to end: real `ballot` processes driven by etcdctl and the PyPI etcd3 client.
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Consensus", "Engines", "Storage", "Server", "StateMachine", "Client", "EtcdAPI",
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
            ],
            exclude: ["clients"]),
    ],
    swiftLanguageModes: [.v6]
)
