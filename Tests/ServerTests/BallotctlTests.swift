import Foundation
import Testing

/// `ballotctl` as users run it, against real members.
@Suite(.serialized, .timeLimit(.minutes(10))) struct BallotctlTests {
    static let binary = TestCluster.root.appendingPathComponent(".build/debug/ballotctl").path

    /// `ballotctl` with `--endpoints` right after the command's words (the
    /// first one, two for a command with subcommands), so a command that
    /// `lock` runs keeps its own arguments.
    static func ctl(_ cluster: TestCluster, _ arguments: [String], endpoints: String? = nil, input: String? = nil, timeout: Double = 30) throws -> TestCluster.Output {
        let words = ["member", "endpoint", "snapshot", "lease", "check"].contains(arguments[0]) ? 2 : 1
        let full = Array(arguments.prefix(words)) + ["--endpoints", endpoints ?? cluster.endpoints] + arguments.dropFirst(words)
        return try TestCluster.run(binary, full, input: input, timeout: timeout)
    }

    @Test func kvTxnAndConsistencyLevels() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        #expect(try Self.ctl(cluster, ["put", "a", "1"]).stdout == "OK\n")
        #expect(try Self.ctl(cluster, ["put", "ab", "2"]).stdout == "OK\n")
        #expect(try Self.ctl(cluster, ["get", "a"]).stdout == "a\n1\n")
        #expect(try Self.ctl(cluster, ["get", "a", "--prefix", "--print-value-only"]).stdout == "1\n2\n")
        // Each level, on a follower too; etcdctl's spelling of serializable works.
        for level in [["--consistency", "lease"], ["--consistency", "bounded", "--max-staleness-ms", "2000"], ["--consistency", "linearizable"]] {
            let got = try Self.ctl(cluster, ["get", "a"] + level, endpoints: cluster.endpoint(1))
            #expect(got.stdout == "a\n1\n", "\(level): \(got.stderr)")
        }
        let bad = try Self.ctl(cluster, ["get", "a", "--consistency", "bounded"])
        #expect(bad.status != 0 && bad.stderr.contains("--max-staleness-ms"), "\(bad.stderr)")
        let table = try Self.ctl(cluster, ["get", "a", "-w", "table"]).stdout
        #expect(table.contains("| KEY | VALUE |") && table.contains("| a   | 1     |"), "\(table)")

        let txn = try Self.ctl(cluster, ["txn"], input: "value(\"a\") = \"1\"\n\nput a 10\nget ab\n\nput a 0\n")
        #expect(txn.stdout == "SUCCESS\n\nOK\n\nab\n2\n", "\(txn.stdout)\(txn.stderr)")
        let failed = try Self.ctl(cluster, ["txn"], input: "mod(\"a\") = \"1\"\n\nput a 11\n\nget a\n")
        #expect(failed.stdout == "FAILURE\n\na\n10\n", "\(failed.stdout)\(failed.stderr)")
        #expect(try Self.ctl(cluster, ["del", "a", "--prefix"]).stdout == "2\n")
        #expect(try Self.ctl(cluster, ["get", "a"]).stdout == "")
    }

    @Test func lockRunsACommandWithItsFencingTokenAndTablesShowTheCluster() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        let first = try Self.ctl(cluster, ["lock", "job", "sh", "-c", "echo token=$BALLOT_FENCING_TOKEN key=$BALLOT_LOCK_KEY"])
        let second = try Self.ctl(cluster, ["lock", "job", "sh", "-c", "echo token=$BALLOT_FENCING_TOKEN"])
        let tokens = [first, second].compactMap { run in
            run.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").first.flatMap { Int64($0.dropFirst("token=".count)) }
        }
        #expect(tokens.count == 2 && tokens[1] > tokens[0], "\(first.stdout)\(first.stderr)\(second.stdout)")
        #expect(first.stdout.contains("key=job/"), "\(first.stdout)")
        // The lock was released when each command ended: nobody holds it.
        #expect(try cluster.etcdctl("get", "job/", "--prefix", "--keys-only").stdout.isEmpty)

        let members = try Self.ctl(cluster, ["member", "list", "-w", "table"]).stdout
        #expect(members.contains("| ID ") && ["m1", "m2", "m3"].allSatisfy(members.contains), "\(members)")
        let status = try Self.ctl(cluster, ["endpoint", "status", "-w", "table"])
        #expect(status.stdout.components(separatedBy: "| true      |").count == 2, "one leader: \(status.stdout)")
        let health = try Self.ctl(cluster, ["endpoint", "health"])
        #expect(health.status == 0 && health.stdout.components(separatedBy: "is healthy").count == 4, "\(health.stdout)")
    }

    /// A held lock is released at SIGTERM (as etcdctl's at ^C), not left
    /// to its session's 60 s TTL: the next holder gets it at once.
    @Test func aHeldLockIsReleasedWhenTheHolderIsStopped() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        let holder = Process()
        holder.executableURL = URL(fileURLWithPath: Self.binary)
        holder.arguments = ["lock", "--endpoints", cluster.endpoints, "held"]
        let out = Pipe()
        holder.standardOutput = out
        try holder.run()
        defer { if holder.isRunning { kill(holder.processIdentifier, SIGKILL) } }
        var printed = Data()
        while !String(decoding: printed, as: UTF8.self).contains("fencing token:") {
            let chunk = out.fileHandleForReading.availableData
            try #require(!chunk.isEmpty, "the holder ended before holding: \(String(decoding: printed, as: UTF8.self))")
            printed += chunk
        }
        kill(holder.processIdentifier, SIGTERM)
        holder.waitUntilExit()
        #expect(holder.terminationStatus == 0)
        // Within the test's bound, far below the TTL.
        let next = try Self.ctl(cluster, ["lock", "held", "true"], timeout: 20)
        #expect(next.status == 0, "\(next.stderr)")
    }

    @Test func aSnapshotIsSavedAndRestoredWithProgress() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        for i in 0..<50 { try cluster.etcdctl("put", "s/\(i)", String(repeating: "x", count: 1000)) }
        let file = cluster.directory + "/backup.db"
        let saved = try Self.ctl(cluster, ["snapshot", "save", file])
        #expect(saved.status == 0 && saved.stdout.hasPrefix("Snapshot saved at \(file)"), "\(saved.stdout)\(saved.stderr)")
        #expect(saved.stderr.contains("saving [") && saved.stderr.contains("100%"), "progress on standard error: \(saved.stderr)")
        #expect(try TestCluster.run("/usr/bin/etcdctl", ["snapshot", "status", file], environment: ["ETCDCTL_API": "3"], timeout: 30).status == 0)
        let restored = try TestCluster.run(Self.binary, ["snapshot", "restore", file, "--data-dir", cluster.directory + "/restored"], timeout: 60)
        #expect(restored.status == 0 && restored.stderr.contains("restoring [") && restored.stderr.contains("100%"), "\(restored.stdout)\(restored.stderr)")
    }
}
