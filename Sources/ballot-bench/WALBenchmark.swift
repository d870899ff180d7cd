import ArgumentParser
import Consensus
import Foundation
import Storage

/// Appends per second through the WAL with group commit, next to the raw
/// fdatasync rate of the same disk (the physical limit one writer meets).
struct WALBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal", abstract: "WAL append throughput with group commit versus the raw fdatasync rate.")

    @Option(help: "Directory on the disk to measure (created and emptied).") var dir = "/tmp/ballot-bench-wal"
    @Option(help: "Comma-separated appender counts.") var appenders = "1,8,64"
    @Option(help: "Seconds per measurement.") var seconds = 3.0
    @Option(help: "Payload bytes per appended entry.") var entryBytes = 256
    @Option(help: "Group commit's gather wait, in microseconds.")
    var gatherWaitMicroseconds = GroupCommitLog.gatherWaitDefaultNanoseconds / 1000

    func run() async throws {
        let counts = appenders.split(separator: ",").compactMap { Int($0) }
        guard !counts.isEmpty, counts.allSatisfy({ (1...1024).contains($0) }) else {
            throw ValidationError("--appenders takes counts in 1...1024, e.g. 1,8,64")
        }
        guard GroupCommitLog.gatherWaitRangeNanoseconds.contains(gatherWaitMicroseconds * 1000) else {
            throw ValidationError("--gather-wait-microseconds takes 0...\(GroupCommitLog.gatherWaitRangeNanoseconds.upperBound / 1000)")
        }
        // The physical limit one writer meets: the faster of the two ways to
        // preallocate a file, so the WAL's own choice cannot flatter it.
        let small = entryBytes + 40
        let rawZeroed = try rawFsyncRate(blockBytes: small, zeroFilled: true)
        let rawFallocated = try rawFsyncRate(blockBytes: small, zeroFilled: false)
        let raw = max(rawZeroed, rawFallocated)
        print("raw pwrite+fdatasync: \(Int(rawZeroed))/s of \(small) B into a zero-filled file, "
            + "\(Int(rawFallocated))/s into a fallocated one (\(dir)); baseline \(Int(raw))/s")
        let rawLarge = try rawFsyncRate(blockBytes: 16 << 10, zeroFilled: true)
        print("raw pwrite+fdatasync: \(Int(rawLarge))/s of 16 KiB into a zero-filled file (what a sync carrying ~55 appends writes)")
        for n in counts {
            let (rate, syncs, total) = try await groupCommitRate(appenders: n)
            print("\(n) appenders: \(Int(rate)) appends/s = \(String(format: "%.1f", rate / raw))x raw fsync"
                + " (\(total) appends in \(syncs) syncs, \(String(format: "%.1f", Double(total) / Double(max(1, syncs)))) per sync)")
            fflush(nil)
        }
    }

    func fresh() throws -> String {
        try? FileManager.default.removeItem(atPath: dir)
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    func rawFsyncRate(blockBytes: Int, zeroFilled: Bool) throws -> Double {
        let path = try fresh() + "/raw.bin"
        let fd = open(path, O_WRONLY | O_CREAT, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot create \(path)") }
        defer { close(fd) }
        // Preallocated like a WAL segment: each fdatasync flushes data only,
        // not a growing file size.
        let size = 256 << 20
        if zeroFilled {
            let zeros = [UInt8](repeating: 0, count: 1 << 20)
            for offset in stride(from: 0, to: size, by: zeros.count) {
                _ = zeros.withUnsafeBytes { pwrite(fd, $0.baseAddress, zeros.count, off_t(offset)) }
            }
        } else {
            posix_fallocate(fd, 0, off_t(size))
        }
        fsync(fd)
        let block = [UInt8](repeating: 1, count: blockBytes)
        var n = 0
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            _ = block.withUnsafeBytes { pwrite(fd, $0.baseAddress, block.count, off_t(n * block.count)) }
            fdatasync(fd)
            n += 1
        }
        return Double(n) / Date().timeIntervalSince(start)
    }

    /// `n` concurrent appenders as tasks, as a server's request handlers are.
    func groupCommitRate(appenders n: Int) async throws -> (Double, UInt64, Int) {
        let (wal, _) = try WriteAheadLog.open(directory: try fresh())
        let log = GroupCommitLog(wal, gatherWaitNanoseconds: gatherWaitMicroseconds * 1000)
        let payload = [UInt8](repeating: 2, count: entryBytes)
        let stop = Date().addingTimeInterval(seconds)
        let start = Date()
        let total = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<n {
                group.addTask {
                    var mine = 0
                    while Date() < stop {
                        try await log.commit { last in (nil, [Entry(term: 1, index: last + 1, payload: .command(payload))]) }
                        mine += 1
                    }
                    return mine
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = Date().timeIntervalSince(start)
        log.close()
        return (Double(total) / elapsed, log.syncCount, total)
    }
}

