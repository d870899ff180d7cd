import Foundation
import Testing

/// No client input can hurt the cluster: a writer runs while clients send
/// keys of every size, binary keys, oversized values and transactions,
/// limits and revisions at the edges, unknown leases, thousands of watches
/// on one stream, a watch that never reads, garbage on client and peer
/// ports and thousands of idle connections (`clients/abuse.py`). Then every
/// member is alive, kept its memory bounded, and serves every acknowledged
/// write; the members' HashKV agree; and the same after all restart.
@Suite(.serialized) struct AbuseTests {
    static let script = TestCluster.root.appendingPathComponent("Tests/ServerTests/clients/abuse.py").path

    /// Anonymous memory (heap, not the store's mapped file) of a process, in bytes.
    static func anonymousBytes(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("RssAnon:") }),
              let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "") else { return nil }
        return kilobytes * 1024
    }

    /// How much more the member serving the watch that never reads may
    /// grow than the others. All members hold the flood in their Raft logs
    /// until a snapshot (as etcd's do); a member that also kept the 190 MB
    /// sent to the stalled watch for it would pass this.
    static let stalledWatchBytesMax = 64 << 20
    /// What any member may grow by in all: the flood's log entries and the rest.
    static let growthBytesMax = 512 << 20

    @Test func noClientInputHurtsTheCluster() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        let acks = NSTemporaryDirectory() + "ballot-abuse-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: acks) }
        let clients = (0..<3).map(cluster.endpoint).joined(separator: ",")
        let peers = cluster.members.map { "127.0.0.1:\($0.peerPort)" }.joined(separator: ",")
        let pids = cluster.members.map { $0.process!.processIdentifier }
        let before = pids.map { Self.anonymousBytes($0) ?? 0 }

        let attack = try TestCluster.run("/usr/bin/env", ["python3", Self.script, "attack", acks, "\(1_572_864)", clients, peers], timeout: 600)
        #expect(attack.status == 0, "\(attack.stdout)\n\(attack.stderr.suffix(3000))\n\(cluster.logs())")
        var grown: [Int] = []
        for (i, member) in cluster.members.enumerated() {
            #expect(member.process?.isRunning == true, "member \(i) stopped\n\(cluster.logs())")
            grown.append((Self.anonymousBytes(pids[i]) ?? 0) - before[i])
            #expect(grown[i] < Self.growthBytesMax, "member \(i) grew by \(grown[i] >> 20) MiB")
        }
        // abuse.py opens the watch that never reads on the third member.
        #expect(grown[2] - min(grown[0], grown[1]) < Self.stalledWatchBytesMax, "growth by member, MiB: \(grown.map { $0 >> 20 })")
        let verify = try TestCluster.run("/usr/bin/env", ["python3", Self.script, "verify", acks, clients], timeout: 300)
        #expect(verify.status == 0, "\(verify.stdout)\n\(verify.stderr.suffix(3000))")

        // Everything acknowledged survives a restart of every member.
        cluster.stop()
        for i in cluster.members.indices { try cluster.start(i) }
        try cluster.waitUntilWritable(timeout: 60)
        let again = try TestCluster.run("/usr/bin/env", ["python3", Self.script, "verify", acks, clients], timeout: 300)
        #expect(again.status == 0, "\(again.stdout)\n\(again.stderr.suffix(3000))\n\(cluster.logs())")
    }
}
