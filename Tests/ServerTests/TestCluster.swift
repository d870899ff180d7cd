import Foundation
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Real `ballot` processes on 127.0.0.1 (or a test network's addresses:
/// `Placement`) with ports the kernel handed out,
/// each in its own temporary data directory. Members are stopped by PID
/// (SIGTERM, then SIGKILL after a bound) when the cluster is stopped or
/// deinitialised, so a failing test never leaves servers behind.
final class TestCluster: @unchecked Sendable {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let binary = root.appendingPathComponent(".build/debug/ballot").path
    static let stopGraceSeconds = 10.0

    /// Where a member listens, and in which network namespace it runs
    /// (`NetworkPartition`); loopback in the test's own namespace by default.
    struct Placement {
        var peerHost = "127.0.0.1"
        var clientHost = "127.0.0.1"
        /// `ip netns exec` runs the member there (it execs the member
        /// itself, so the member's PID is the one stopped).
        var namespace: String?

        static let loopback = Placement()
    }

    struct Member {
        var placement = Placement.loopback
        var name: String
        var clientPort: Int
        var peerPort: Int
        var metricsPort: Int
        var dataDir: String
        var process: Process?
        var log: String
    }

    let directory: String
    private(set) var members: [Member]
    private(set) var cluster: String
    /// `--initial-cluster-state` per member: founders say new, joiners existing.
    private var joining: Set<Int> = []

    /// Flags every member gets besides the cluster's own.
    let extraArguments: [String]
    /// The consensus engine the members run (`--engine`): the test's
    /// choice, else `BALLOT_TEST_ENGINE` (scripts/test.sh runs the
    /// end-to-end suites again with `paxos`), else raft.
    let engine: String
    /// A member that runs another engine than the rest (set in `prepare`).
    var memberEngine: [Int: String] = [:]
    static var engineFromEnvironment: String { ProcessInfo.processInfo.environment["BALLOT_TEST_ENGINE"] ?? "raft" }
    /// Environment variables a member gets besides the test's own, by index
    /// (set in `prepare`, or before a restart).
    var memberEnvironment: [Int: [String: String]] = [:]
    /// `http` or `https`, for the client URLs and for the peer URLs.
    let clientScheme: String
    let peerScheme: String
    /// Flags every etcdctl run gets (its TLS settings).
    let ctlArguments: [String]

    /// Starts `size` members and waits until the cluster accepts a write;
    /// `prepare` runs first, when names, ports and data directories are set
    /// (to put data where a member will find it).
    init(size: Int = 3, extraArguments: [String] = [], clientScheme: String = "http", peerScheme: String = "http",
         ctlArguments: [String] = [], placements: [Int: Placement] = [:], engine: String? = nil,
         prepare: (TestCluster) throws -> Void = { _ in }) throws {
        self.extraArguments = extraArguments
        self.engine = engine ?? Self.engineFromEnvironment
        self.clientScheme = clientScheme
        self.peerScheme = peerScheme
        self.ctlArguments = ctlArguments
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw TestFailure("\(Self.binary) is missing: build with `swift build --build-tests` (scripts/test.sh does)")
        }
        directory = NSTemporaryDirectory() + "ballot-e2e-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ports = try Self.freePorts(3 * size)
        members = (0..<size).map { i in
            Member(name: "m\(i + 1)", clientPort: ports[3 * i], peerPort: ports[3 * i + 1], metricsPort: ports[3 * i + 2],
                   dataDir: "\(NSTemporaryDirectory())ballot-e2e-\(UUID().uuidString)/m\(i + 1)", process: nil, log: "")
        }
        for i in members.indices {
            members[i].dataDir = "\(directory)/m\(i + 1)"
            members[i].log = "\(directory)/m\(i + 1).log"
            members[i].placement = placements[i] ?? .loopback
        }
        cluster = members.map { "\($0.name)=\(peerScheme)://\($0.placement.peerHost):\($0.peerPort)" }.joined(separator: ",")
        do {
            try prepare(self)
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
        for i in members.indices { try start(i) }
        try waitUntilWritable()
    }

    deinit { stop() }

    /// Run blocking test-harness work (starting processes, waiting for
    /// them) on a thread of its own, so an async test does not hold one of
    /// Swift's few cooperative threads for seconds: on a loaded 2-core CI
    /// runner that starved the gRPC client's own tasks until their calls
    /// timed out.
    static func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread { continuation.resume(with: Result { try body() }) }.start()
        }
    }

    var endpoints: String { members.map { "\($0.placement.clientHost):\($0.clientPort)" }.joined(separator: ",") }
    func endpoint(_ i: Int) -> String { "\(members[i].placement.clientHost):\(members[i].clientPort)" }

    /// The command line member `i` starts with.
    func arguments(_ i: Int) -> [String] {
        let m = members[i]
        return [
            "--name", m.name, "--data-dir", m.dataDir,
            "--listen-client-urls", "\(clientScheme)://\(m.placement.clientHost):\(m.clientPort)",
            "--advertise-client-urls", "\(clientScheme)://\(m.placement.clientHost):\(m.clientPort)",
            "--listen-peer-urls", "\(peerScheme)://\(m.placement.peerHost):\(m.peerPort)",
            "--listen-metrics-urls", "http://\(m.placement.clientHost):\(m.metricsPort)",
            "--initial-advertise-peer-urls", "\(peerScheme)://\(m.placement.peerHost):\(m.peerPort)",
            "--initial-cluster", cluster, "--initial-cluster-token", "e2e",
            "--initial-cluster-state", joining.contains(i) ? "existing" : "new",
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--engine", memberEngine[i] ?? engine,
        ] + extraArguments
    }

    func start(_ i: Int) throws {
        let m = members[i]
        let process = Process()
        if let namespace = m.placement.namespace {
            process.executableURL = URL(fileURLWithPath: NetworkPartition.ip)
            process.arguments = ["netns", "exec", namespace, Self.binary] + arguments(i)
        } else {
            process.executableURL = URL(fileURLWithPath: Self.binary)
            process.arguments = arguments(i)
        }
        process.environment = ProcessInfo.processInfo.environment.merging(memberEnvironment[i] ?? [:]) { $1 }
        _ = FileManager.default.createFile(atPath: m.log, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: m.log))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        members[i].process = process
    }

    /// Start a member that joins the running cluster (after `member add`);
    /// returns its index. Its `--initial-cluster` lists every member, itself too.
    func startJoining(name: String, peerPort: Int, clientPort: Int) throws -> Int {
        let i = members.count
        let metricsPort = try Self.freePorts(1)[0]
        members.append(Member(name: name, clientPort: clientPort, peerPort: peerPort, metricsPort: metricsPort, dataDir: "\(directory)/\(name)",
                              process: nil, log: "\(directory)/\(name).log"))
        cluster += ",\(name)=\(peerScheme)://127.0.0.1:\(peerPort)"
        joining.insert(i)
        try start(i)
        return i
    }

    /// Start member `i` again as a joiner with an empty data directory
    /// (after it was removed and added back with `member add`).
    func rejoin(_ i: Int) throws {
        kill(i)
        try? FileManager.default.removeItem(atPath: members[i].dataDir)
        joining.insert(i)
        try start(i)
    }

    /// SIGKILL one member: no chance to flush or say goodbye.
    func kill(_ i: Int) {
        guard let process = members[i].process else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        members[i].process = nil
    }

    /// A power failure on one member: SIGKILL, then its store goes back to
    /// the copy it kept as of its last flush (members started with
    /// `ServerConfig.powerCutImageVariable`), every commit since lost, as
    /// a real power failure leaves it under the server's
    /// `CommitDurability.checkpointed` (the image is taken at each
    /// checkpoint). Its log keeps what it wrote: the log syncs before
    /// anything depends on it.
    ///
    /// A member cut again before it opened its store since the last cut has
    /// no new image: its data file is then the image put in place last time.
    func powerCut(_ i: Int) throws {
        guard memberEnvironment[i]?[Self.powerCutVariable] == "1" else {
            throw TestFailure("member \(i) runs without \(Self.powerCutVariable)=1: it keeps no power-cut image")
        }
        kill(i)
        let db = members[i].dataDir + "/db"
        let image = db + "/data.mdb.power-cut"
        guard FileManager.default.fileExists(atPath: image) else { return }
        try? FileManager.default.removeItem(atPath: db + "/lock.mdb")
        try? FileManager.default.removeItem(atPath: db + "/data.mdb")
        try FileManager.default.moveItem(atPath: image, toPath: db + "/data.mdb")
    }

    /// The environment variable that makes a member keep a power-cut image
    /// (`ServerConfig.powerCutImageVariable`; the tests name it themselves,
    /// as users of the binary would).
    static let powerCutVariable = "BALLOT_FAULT_POWER_CUT_IMAGE"

    /// Freeze (SIGSTOP) or thaw (SIGCONT) one member: its sockets stay open
    /// while it answers nothing, as a member stuck on a disk would.
    func freeze(_ i: Int, _ frozen: Bool) {
        guard let process = members[i].process else { return }
        Glibc.kill(process.processIdentifier, frozen ? SIGSTOP : SIGCONT)
    }

    /// SIGTERM every member, SIGKILL any still running after the grace period.
    func stop() {
        for m in members { if let p = m.process, p.isRunning { Glibc.kill(p.processIdentifier, SIGCONT) } }
        for m in members { if let p = m.process, p.isRunning { Glibc.kill(p.processIdentifier, SIGTERM) } }
        let deadline = Date().addingTimeInterval(Self.stopGraceSeconds)
        while members.contains(where: { $0.process?.isRunning == true }) && Date() < deadline { usleep(20_000) }
        for i in members.indices {
            if let p = members[i].process, p.isRunning {
                Glibc.kill(p.processIdentifier, SIGKILL)
                p.waitUntilExit()
            }
            members[i].process = nil
        }
    }

    func cleanUp() {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func logs() -> String {
        members.map { m in "--- \(m.name)\n" + ((try? String(contentsOfFile: m.log, encoding: .utf8)) ?? "") }.joined(separator: "\n")
    }

    func waitUntilWritable(timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let r = try? etcdctl("put", "ballot-e2e-ready", "1", timeout: 5), r.status == 0 { return }
            usleep(100_000)
        }
        throw TestFailure("the cluster accepted no write within \(timeout) s\n\(logs())")
    }

    /// Each member's HashKV at its latest revision (`etcdctl endpoint
    /// hashkv`), in endpoint order; empty if etcdctl answered no JSON.
    func hashKVs() throws -> [UInt32] {
        let out = try etcdctl("endpoint", "hashkv", "-w", "json")
        let list = (try? JSONSerialization.jsonObject(with: Data(out.stdout.utf8))) as? [[String: Any]] ?? []
        return list.compactMap { (($0["HashKV"] as? [String: Any])?["hash"] as? NSNumber)?.uint32Value }
    }

    /// Runs Debian's etcdctl (v3 API) against the cluster or `endpoints`.
    @discardableResult
    func etcdctl(_ arguments: String..., endpoints: String? = nil, input: String? = nil, timeout: Double = 15) throws -> Output {
        try run(etcdctl: arguments, endpoints: endpoints, input: input, timeout: timeout)
    }

    /// `etcdctl` with its arguments as a list.
    @discardableResult
    func run(etcdctl arguments: [String], endpoints: String? = nil, input: String? = nil, timeout: Double = 15) throws -> Output {
        try Self.run("/usr/bin/etcdctl", ["--endpoints=\(endpoints ?? self.endpoints)", "--dial-timeout=3s", "--command-timeout=10s"] + ctlArguments + arguments,
                     environment: ["ETCDCTL_API": "3"], input: input, timeout: timeout)
    }

    /// GET a path from a member's --listen-metrics-urls port, or with
    /// `clientPort`, from its client URL, which serves gRPC too (the
    /// status code follows the body on a line of its own).
    func http(_ i: Int, _ path: String, clientPort: Bool = false) throws -> Output {
        let port = clientPort ? members[i].clientPort : members[i].metricsPort
        let scheme = clientPort ? clientScheme : "http"
        return try Self.run("/usr/bin/curl", ["-sk", "-w", "\n%{http_code}", "\(scheme)://\(members[i].placement.clientHost):\(port)\(path)"], timeout: 10)
    }

    struct Output {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a command with a bounded time; kills it when the time is up.
    static func run(_ path: String, _ arguments: [String], environment: [String: String] = [:], input: String? = nil, timeout: Double) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe(), err = Pipe(), inp = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inp
        try process.run()
        if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
        try? inp.fileHandleForWriting.close()
        let group = DispatchGroup()
        nonisolated(unsafe) var stdout = Data(), stderr = Data()
        group.enter()
        DispatchQueue.global().async { stdout = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { stderr = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            Glibc.kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
        group.wait()
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    /// Ports for the tests' servers, below the kernel's ephemeral range:
    /// a port in that range can be taken, as the local end of any outgoing
    /// connection on the machine, while the member that listened on it is
    /// down, and the member then cannot bind it again when the test
    /// restarts it ("Address already in use": two CI runs failed so).
    /// Handed out in turn within this process (every test shares it), from
    /// a start that differs between processes, each checked free by binding it.
    static let testPorts: Range<Int> = {
        let ephemeral = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
            .flatMap { Int($0.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first ?? "") } ?? 32_768
        return 10_000..<max(ephemeral, 20_000)
    }()
    private static let nextTestPort = Atomic<Int>(Int(getpid()) * 97)

    static func freePorts(_ count: Int) throws -> [Int] {
        var sockets: [Int32] = []
        defer { sockets.forEach { close($0) } }
        var ports: [Int] = []
        var tries = 0
        while ports.count < count {
            tries += 1
            guard tries <= testPorts.count else { throw TestFailure("no free port on 127.0.0.1 in \(testPorts)") }
            let port = testPorts.lowerBound + nextTestPort.wrappingAdd(1, ordering: .relaxed).oldValue % testPorts.count
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(port)).bigEndian
            let bound = withUnsafePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            // Held until all are chosen, so that one call never returns a port twice.
            sockets.append(fd)
            if bound { ports.append(port) }
        }
        return ports
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
