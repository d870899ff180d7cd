import ArgumentParser
import Client
import Foundation
import Server

struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "snapshot", abstract: "Save a member's backup, or restore one into a data directory.",
                                                    subcommands: [Save.self, Restore.self])

    struct Save: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The file to write (whole or not at all).") var file: String
        func run() async throws {
            try await global.withClient { [file] client in
                let bar = ProgressBar("saving")
                let size = try await client.saveSnapshot(to: file) { written, remaining in bar.update(done: written, total: written + remaining) }
                bar.finish()
                print("Snapshot saved at \(file) (\(Output.bytes(size)))")
            }
        }
    }

    /// `ballot snapshot restore`'s work, with a progress bar.
    struct Restore: ParsableCommand {
        @Argument(help: "The backup file (from etcdctl or ballotctl snapshot save).") var file: String
        @Option(help: "The member's new data directory (must not exist).") var dataDir: String
        @Flag(help: "Accept a file without etcd's SHA-256 trailer.") var skipHashCheck = false
        func run() throws {
            let bar = ProgressBar("restoring")
            do {
                let summary = try SnapshotRestore.run(file: file, dataDirectory: dataDir, skipHashCheck: skipHashCheck) { percent, bytes in
                    bar.update(done: UInt64(bytes), total: percent == 0 ? UInt64(bytes) : UInt64(bytes) * 100 / UInt64(max(1, percent)))
                }
                bar.finish()
                print(summary)
            } catch {
                FileHandle.standardError.write(Data("Error: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }
}
