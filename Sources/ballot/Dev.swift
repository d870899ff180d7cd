import ArgumentParser
import Foundation

/// `ballot dev`: a 3-member cluster on loopback in one command, on etcd's
/// own local-cluster ports (its Procfile): clients 2379, 22379, 32379 and
/// peers 2380, 22380, 32380. Ctrl-C stops every member cleanly.
struct Dev: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev", abstract: "Start a local 3-member cluster on 127.0.0.1 (etcd's local-cluster ports).")

    @Option(help: "Client port of the first member; the others add 20000 and 30000 (peer ports are one higher).")
    var basePort = 2379
    @Option(help: "Directory holding the members' data directories.") var dataDir = "ballot-dev.data"
    @Option(help: "Log level for the members.") var logLevel = "info"
    @Option(help: "Consensus engine every member runs: raft or paxos.") var engine = "raft"

    static let stopGraceSeconds = 10.0

    func run() async throws {
        let clientPorts = [basePort, basePort + 20_000, basePort + 30_000]
        guard clientPorts.allSatisfy({ (1...65_534).contains($0) }) else {
            throw ValidationError("--base-port \(basePort) puts a port outside 1...65535")
        }
        guard ["raft", "paxos"].contains(engine) else { throw ValidationError("--engine \(engine): use raft or paxos") }
        let names = ["m1", "m2", "m3"]
        let cluster = zip(names, clientPorts).map { "\($0)=http://127.0.0.1:\($1 + 1)" }.joined(separator: ",")
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        var members: [Process] = []
        for (name, port) in zip(names, clientPorts) {
            let process = Process()
            process.executableURL = executable
            process.arguments = [
                "--name", name, "--data-dir", "\(dataDir)/\(name)",
                "--listen-client-urls", "http://127.0.0.1:\(port)", "--advertise-client-urls", "http://127.0.0.1:\(port)",
                "--listen-peer-urls", "http://127.0.0.1:\(port + 1)", "--initial-advertise-peer-urls", "http://127.0.0.1:\(port + 1)",
                "--initial-cluster", cluster, "--initial-cluster-token", "ballot-dev", "--log-level", logLevel,
                "--engine", engine,
            ]
            try process.run()
            members.append(process)
        }
        let endpoints = clientPorts.map { "127.0.0.1:\($0)" }.joined(separator: ",")
        print("""
            Ballot dev cluster: 3 members on 127.0.0.1 (engine \(engine)), data in \(dataDir)/
              clients: \(clientPorts.map { "http://127.0.0.1:\($0)" }.joined(separator: " "))
              peers:   \(clientPorts.map { "http://127.0.0.1:\($0 + 1)" }.joined(separator: " "))
              metrics: \(clientPorts.map { "http://127.0.0.1:\($0)/metrics" }.joined(separator: " "))  (and /health, /version)
            Try:
              ETCDCTL_API=3 etcdctl --endpoints=\(endpoints) put hello world
              ETCDCTL_API=3 etcdctl --endpoints=\(endpoints) get hello
            Ctrl-C stops all members.
            """)
        fflush(nil)
        await waitForSignalOrExit(members)
        for process in members where process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let deadline = Date().addingTimeInterval(Self.stopGraceSeconds)
        while members.contains(where: \.isRunning) && Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
        for process in members where process.isRunning { kill(process.processIdentifier, SIGKILL) }
        print("all members stopped")
    }

    /// Returns on SIGINT or SIGTERM, or when a member exits on its own.
    private func waitForSignalOrExit(_ members: [Process]) async {
        let (stream, continuation) = AsyncStream<String>.makeStream()
        let sources = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield("signal \(number)") }
            source.resume()
            return source
        }
        let watcher = Task {
            while !Task.isCancelled {
                if let exited = members.first(where: { !$0.isRunning }) {
                    continuation.yield("member exited with status \(exited.terminationStatus)")
                    return
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
        }
        for await reason in stream {
            print("stopping: \(reason)")
            break
        }
        watcher.cancel()
        sources.forEach { $0.cancel() }
    }
}
