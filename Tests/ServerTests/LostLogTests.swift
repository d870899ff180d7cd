import Consensus
import Foundation
import Logging
@testable import Server
import Storage
import Testing

/// A member whose log is gone but whose store remains must not start: the
/// log's hard state holds its votes, and a member that forgot them could
/// vote twice in one term.
@Suite struct LostLogTests {
    static func config(_ directory: String) -> ServerConfig {
        let peer = HostPort(host: "127.0.0.1", port: 1)
        return ServerConfig(
            name: "m1", dataDirectory: directory, listenClient: [HostPort(host: "127.0.0.1", port: 2)], advertiseClientURLs: [],
            listenPeer: [peer], initialCluster: [("m1", peer)])
    }

    static func message(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch {
            return "\(error)"
        }
    }

    @Test func aStoreThatOutlivedItsLogIsRefused() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ballot-lostlog-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let config = Self.config(directory)
        // A member that ran: its log recorded a vote, its store applied entries.
        let data = try DataDirectory.open(directory, clusterID: config.foundingClusterID)
        do {
            let (wal, _) = try WriteAheadLog.open(directory: data.walPath)
            try wal.append(hardState: HardState(term: 3, vote: config.memberID, commit: 0), entries: [])
            try wal.sync()
            try MVCCStore(directory: data.dbPath).apply([.put(key: [1], value: [1], lease: 0)], index: 7)
        }

        // The log's segments emptied (wal/ itself still there).
        for name in try FileManager.default.contentsOfDirectory(atPath: data.walPath) {
            try FileManager.default.removeItem(atPath: data.walPath + "/" + name)
        }
        let emptied = Self.message { _ = try BallotServer(config: config, logger: Logger(label: "test")) }
        #expect(emptied?.contains("store applied through index 7") == true, "\(emptied ?? "started")")
        #expect(emptied?.contains("etcdctl member remove") == true)

        // wal/ removed altogether.
        try FileManager.default.removeItem(atPath: data.walPath)
        let removed = Self.message { _ = try BallotServer(config: config, logger: Logger(label: "test")) }
        #expect(removed?.contains("missing from a data directory that was used before") == true, "\(removed ?? "started")")
        #expect(!FileManager.default.fileExists(atPath: data.walPath), "a refused start leaves no empty log behind")
    }
}
