import ArgumentParser
import Foundation
import Server

/// `ballot snapshot restore FILE --data-dir DIR`: etcdctl's restore, for
/// Ballot; a backup from etcd or from Ballot becomes a data directory that
/// a member imports when it first starts.
struct Snapshot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ballot snapshot", abstract: "Work with backups (etcdctl snapshot save files, from etcd or Ballot).",
        subcommands: [Restore.self])

    struct Restore: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restore a backup into a new data directory; the member imports it when it first starts.")

        @Argument(help: "The backup file.") var file: String
        @Option(help: "The member's new data directory (must not exist).") var dataDir: String
        @Flag(help: "Accept a file without etcd's SHA-256 trailer (a member's member/snap/db).") var skipHashCheck = false

        func run() throws {
            do {
                let summary = try SnapshotRestore.run(file: file, dataDirectory: dataDir, skipHashCheck: skipHashCheck) { percent, bytes in
                    print("restoring: \(percent)% (\(bytes) bytes)")
                }
                print(summary)
            } catch {
                // A refused file is not a usage error: etcdctl's words, status 1.
                FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }
}
