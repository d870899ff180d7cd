import Foundation
import Testing

/// A run of `clients/etcd3_load.py`: PyPI etcd3 clients writing
/// `load/<client>/<seq>` keys for a while, each acknowledged write printed.
final class LoadRun: @unchecked Sendable {
    static let script = TestCluster.root.appendingPathComponent("Tests/ServerTests/clients/etcd3_load.py").path

    struct Ack {
        var key: String
        var value: String
        var at: Double
    }

    private let process = Process()
    private let reader = DispatchGroup()
    /// Written by the reader thread, read after `reader` is done.
    private var output = Data()

    /// Start `clients` writers for `seconds` against `endpoints`.
    init(seconds: Double, clients: Int, endpoints: [String]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script, "\(seconds)", "\(clients)"] + endpoints
        let out = Pipe()
        process.standardOutput = out
        reader.enter()
        DispatchQueue.global().async { [self] in
            output = out.fileHandleForReading.readDataToEndOfFile()
            reader.leave()
        }
        try process.run()
    }

    /// Wait for the run to end (killing it after `timeout`); every write
    /// acknowledged, and whether the generator finished on its own.
    func finish(timeout: Double = 60) -> (acks: [Ack], finished: Bool) {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        reader.wait()
        let lines = String(decoding: output, as: UTF8.self).split(separator: "\n")
        let acks = lines.filter { $0.hasPrefix("ack ") }.map { $0.split(separator: " ") }.map {
            Ack(key: String($0[1]), value: String($0[2]), at: Double($0[3]) ?? 0)
        }
        return (acks, lines.last?.hasPrefix("done ") == true)
    }
}

extension TestCluster {
    /// The `load/` keys member `i` holds, read from it alone (serializable).
    func loadKeys(on i: Int) throws -> [String: String] {
        let read = try etcdctl("get", "load/", "--prefix", "--consistency=s", "-w", "json", endpoints: endpoint(i), timeout: 30)
        let object = try JSONSerialization.jsonObject(with: Data(read.stdout.utf8)) as? [String: Any]
        var stored: [String: String] = [:]
        for kv in (object?["kvs"] as? [[String: Any]]) ?? [] {
            let key = String(decoding: Data(base64Encoded: kv["key"] as? String ?? "") ?? Data(), as: UTF8.self)
            stored[key] = String(decoding: Data(base64Encoded: kv["value"] as? String ?? "") ?? Data(), as: UTF8.self)
        }
        return stored
    }

    /// Write a barrier through the cluster until every member reports the
    /// same revision; the revisions last seen.
    func waitForSameRevision(timeout: Double = 30) throws -> [Int64] {
        let deadline = Date().addingTimeInterval(timeout)
        var revisions: [Int64] = []
        repeat {
            usleep(200_000)
            _ = try etcdctl("put", "ballot-e2e-barrier", "1")
            revisions = members.indices.map { LeaderFailoverTests.status(self, $0)?.revision ?? -1 }
        } while Set(revisions).count != 1 && Date() < deadline
        return revisions
    }

    /// HashKV of every member at `revision`.
    func hashes(at revision: Int64) throws -> [UInt32] {
        try members.indices.map { i in
            let out = try etcdctl("endpoint", "hashkv", "--rev=\(revision)", "-w", "json", endpoints: endpoint(i))
            let list = try JSONSerialization.jsonObject(with: Data(out.stdout.utf8)) as? [[String: Any]]
            return ((list?.first?["HashKV"] as? [String: Any])?["hash"] as? NSNumber)?.uint32Value ?? 0
        }
    }
}
