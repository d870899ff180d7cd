import Consensus
import Foundation
import Storage
import Testing

@Suite struct WriteAheadLogTests {
    static func entry(_ index: UInt64, term: UInt64 = 1, _ text: String? = nil) -> Entry {
        Entry(term: Term(term), index: LogIndex(index), payload: .command(Array((text ?? "e\(index)").utf8)))
    }

    static func small() -> WALSettings {
        var s = WALSettings()
        s.segmentBytes = 64 << 10
        return s
    }

    static func segments(_ dir: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".wal") }.sorted()
    }

    @Test func roundTripsEveryKindOfRecord() throws {
        let dir = try TemporaryDirectory()
        let bootstrap = Entry(term: 1, index: 1, payload: .configChange(.bootstrap(Membership(voters: [1, 2, 3], learners: [4]))))
        let change = Entry(term: 2, index: 3, payload: .configChange(ConfigChange(kind: .change, changes: [.promoteLearner(4), .removeVoter(1)])))
        let written = [bootstrap, Entry(term: 2, index: 2, payload: .noop), change, Entry(term: 2, index: 4, payload: .configChange(.leaveJoint)), Self.entry(5, term: 2)]
        do {
            let (wal, recovery) = try WriteAheadLog.open(directory: dir.path)
            #expect(recovery.entries.isEmpty && recovery.hardState == HardState())
            try wal.append(hardState: HardState(term: 2, vote: 3, commit: 4), entries: written)
            try wal.sync()
        }
        let (_, recovery) = try WriteAheadLog.open(directory: dir.path)
        #expect(recovery.entries == written)
        #expect(recovery.hardState == HardState(term: 2, vote: 3, commit: 4))
        #expect(recovery.truncatedTail == nil)
    }

    @Test func unsyncedRecordsAreNotPromised() throws {
        let dir = try TemporaryDirectory()
        do {
            let (wal, _) = try WriteAheadLog.open(directory: dir.path)
            try wal.append(hardState: nil, entries: [Self.entry(1)])
            try wal.sync()
            try wal.append(hardState: nil, entries: [Self.entry(2)])  // never synced, never written
        }
        let (_, recovery) = try WriteAheadLog.open(directory: dir.path)
        #expect(recovery.entries == [Self.entry(1)])
    }

    @Test func laterLeaderOverwritesSuffix() throws {
        let dir = try TemporaryDirectory()
        do {
            let (wal, _) = try WriteAheadLog.open(directory: dir.path)
            try wal.append(hardState: nil, entries: (1...10).map { Self.entry($0) })
            try wal.append(hardState: HardState(term: 3, vote: 2, commit: 4), entries: (5...7).map { Self.entry($0, term: 3, "new\($0)") })
            try wal.sync()
        }
        let (_, recovery) = try WriteAheadLog.open(directory: dir.path)
        #expect(recovery.entries == (1...4).map { Self.entry($0) } + (5...7).map { Self.entry($0, term: 3, "new\($0)") })
    }

    @Test func rotatesReleasesAndKeepsStateAcrossSegments() throws {
        let dir = try TemporaryDirectory()
        let payload = String(repeating: "x", count: 900)
        do {
            let (wal, _) = try WriteAheadLog.open(directory: dir.path, settings: Self.small())
            for i in UInt64(1)...400 {
                try wal.append(hardState: HardState(term: 1, vote: 1, commit: LogIndex(i)), entries: [Self.entry(i, payload)])
                if i % 10 == 0 { try wal.sync() }
            }
            try wal.sync()
            #expect(wal.segmentCount > 4)
            try wal.append(snapshot: SnapshotMarker(index: 300, term: 1, replacesLog: false, membership: Membership(voters: [1, 2], learners: [3])))
            try wal.sync()
            try wal.releaseSegments(coveredThrough: 300)
            #expect(wal.segmentCount < 4)
        }
        let (_, recovery) = try WriteAheadLog.open(directory: dir.path, settings: Self.small())
        #expect(recovery.snapshot == SnapshotMarker(index: 300, term: 1, replacesLog: false, membership: Membership(voters: [1, 2], learners: [3])))
        #expect(recovery.entries.map(\.index.rawValue) == Array(301...400))
        #expect(recovery.hardState.commit == 400)
    }

    /// Two compactions with rotations between them: the segments left after
    /// the second release start with the first compaction's marker (each new
    /// segment repeats the latest), then entries long after it, whose
    /// predecessors went with the released segments and are covered by the
    /// second marker further on. Found by restarting a cluster after a
    /// 300,000-key load: every member refused its log.
    @Test func aSegmentStartingWithAnOlderMarkerRecoversThroughTheNewerOne() throws {
        let dir = try TemporaryDirectory()
        let payload = String(repeating: "w", count: 900)
        do {
            let (wal, _) = try WriteAheadLog.open(directory: dir.path, settings: Self.small())
            for i in UInt64(1)...200 { try wal.append(hardState: nil, entries: [Self.entry(i, payload)]) }
            try wal.append(snapshot: SnapshotMarker(index: 100, term: 1, replacesLog: false))
            try wal.sync()
            try wal.releaseSegments(coveredThrough: 100)
            for i in UInt64(201)...800 { try wal.append(hardState: HardState(term: 1, vote: 1, commit: LogIndex(i)), entries: [Self.entry(i, payload)]) }
            try wal.append(snapshot: SnapshotMarker(index: 700, term: 1, replacesLog: false))
            try wal.sync()
            try wal.releaseSegments(coveredThrough: 700)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".wal") }.sorted()
        let firstKept = UInt64(names[0].dropLast(4).split(separator: "-")[1], radix: 16)!
        #expect(firstKept > 101 && firstKept <= 700, "the test needs a kept segment starting past the first marker: \(names)")
        let (_, recovery) = try WriteAheadLog.open(directory: dir.path, settings: Self.small())
        #expect(recovery.snapshot?.index == 700)
        #expect(recovery.entries.map(\.index.rawValue) == Array(701...800))
        #expect(recovery.hardState.commit == 800)
    }

    /// A batch that crosses a segment boundary: the new segment must be
    /// named after the first entry it holds, not after the batch before,
    /// or releasing segments for a snapshot deletes entries it does not cover.
    @Test func aBatchStraddlingARotationNamesTheNewSegmentAfterItsFirstEntry() throws {
        let dir = try TemporaryDirectory()
        let payload = String(repeating: "z", count: 900)
        let settings = Self.small()
        let perSegment = settings.segmentBytes / 900
        var firstOfSecondOutside: UInt64 = 0
        do {
            let (wal, _) = try WriteAheadLog.open(directory: dir.path, settings: settings)
            try wal.append(hardState: nil, entries: (1...10).map { Self.entry($0, payload) })
            try wal.sync()
            // One batch from 11 that runs past the first segment.
            let batch = (11...UInt64(perSegment + 20)).map { Self.entry($0, payload) }
            try wal.append(hardState: HardState(term: 1, vote: 1, commit: 12), entries: batch)
            try wal.sync()
            #expect(wal.segmentCount == 2)
            let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasSuffix(".wal") }.sorted()
            let firstOfSecond = UInt64(names[1].dropLast(4).split(separator: "-")[1], radix: 16)!
            firstOfSecondOutside = firstOfSecond
            #expect(firstOfSecond > 11, "the second segment starts part-way through the batch, not at \(firstOfSecond)")
            // A snapshot at 12 covers only 1...12: the first segment, which
            // holds entries past 12, must stay.
            try wal.releaseSegments(coveredThrough: 12)
            #expect(wal.segmentCount == 2)
            try wal.append(snapshot: SnapshotMarker(index: LogIndex(firstOfSecond - 1), term: 1, replacesLog: false))
            try wal.sync()
            try wal.releaseSegments(coveredThrough: LogIndex(firstOfSecond - 1))
            #expect(wal.segmentCount == 1)
        }
        let (_, recovery) = try WriteAheadLog.open(directory: dir.path, settings: settings)
        #expect(recovery.entries.map(\.index.rawValue) == Array(firstOfSecondOutside...UInt64(perSegment + 20)))
    }

    @Test func installedSnapshotSurvivesLaterRotation() throws {
        let dir = try TemporaryDirectory()
        let payload = String(repeating: "y", count: 900)
        do {
            let (wal, _) = try WriteAheadLog.open(directory: dir.path, settings: Self.small())
            try wal.append(hardState: nil, entries: (1...20).map { Self.entry($0) })
            try wal.append(snapshot: SnapshotMarker(index: 500, term: 4, replacesLog: true))
            for i in UInt64(501)...700 { try wal.append(hardState: nil, entries: [Self.entry(i, term: 4, payload)]) }
            try wal.append(hardState: HardState(term: 4, vote: nil, commit: 700), entries: [])
            try wal.sync()
            #expect(wal.segmentCount > 1)
        }
        let (_, recovery) = try WriteAheadLog.open(directory: dir.path, settings: Self.small())
        #expect(recovery.snapshot?.index == 500)
        #expect(recovery.entries.map(\.index.rawValue) == Array(501...700))
    }

    @Test func tornTailIsCutAndReported() throws {
        let dir = try TemporaryDirectory()
        do {
            let (wal, _) = try WriteAheadLog.open(directory: dir.path)
            try wal.append(hardState: nil, entries: (1...5).map { Self.entry($0) })
            try wal.sync()
        }
        // A crash mid-write: a record header and part of its payload, then nothing.
        let file = dir.path + "/" + (try Self.segments(dir.path)).last!
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        let end = data.lastIndex { $0 != 0 }! + 1
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        try handle.seek(toOffset: UInt64(end))
        handle.write(Data([40, 0, 0, 0, 3, 0xDE, 0xAD, 0xBE, 0xEF, 1, 2, 3]))
        try handle.close()
        let (wal, recovery) = try WriteAheadLog.open(directory: dir.path)
        #expect(recovery.entries == (1...5).map { Self.entry($0) })
        #expect(recovery.truncatedTail?.contains("byte offset \(end)") == true)
        // The log keeps working after the cut.
        try wal.append(hardState: nil, entries: [Self.entry(6)])
        try wal.sync()
        let (_, again) = try WriteAheadLog.open(directory: dir.path)
        #expect(again.entries.count == 6 && again.truncatedTail == nil)
    }

    /// A rewrite that repeats entries the log already holds (Multi-Paxos
    /// does this when it fills a hole below slots it accepted) must not
    /// lose them when a crash tears it: the append's entries are all or
    /// nothing.
    @Test func aTornRewriteKeepsTheEntriesItRepeated() throws {
        let rewrite = [Self.entry(3, term: 2, "filled")] + (4...6).map { Self.entry($0) }
        try Self.tearEveryByte(
            of: { wal in try wal.append(hardState: nil, entries: rewrite) },
            after: (1...6).map { Self.entry($0) },
            whole: { $0.snapshot == nil && $0.entries == (1...2).map { Self.entry($0) } + rewrite })
    }

    /// A snapshot from the leader with the acceptances a member keeps after
    /// it: the marker replaces the log, so it must not survive without them.
    @Test func aTornSnapshotInstallKeepsItsLaterEntries() throws {
        let marker = SnapshotMarker(index: 3, term: 2, replacesLog: true)
        let kept = (4...6).map { Self.entry($0) }
        try Self.tearEveryByte(
            of: { wal in try wal.append(snapshot: marker, thenEntries: kept, hardState: HardState(term: 2, vote: 1, commit: 3)) },
            after: (1...6).map { Self.entry($0) },
            whole: { $0.snapshot == marker && $0.entries == kept })
    }

    /// After a torn batch, a restarted member may write a marker or a hard
    /// state of its own before any entry: those stand, the torn batch does not.
    @Test func recordsWrittenAfterATornBatchStand() throws {
        let old = (1...6).map { Self.entry($0) }
        let (dir, url, start, end, written) = try Self.written(old) { wal in
            try wal.append(hardState: nil, entries: [Self.entry(3, term: 2, "filled")] + (4...6).map { Self.entry($0) })
        }
        var bytes = written
        // Keep the batch header and its first entry record whole, lose the rest.
        let cut = start + (end - start) / 2
        bytes.replaceSubrange(cut..<end, with: Data(count: end - cut))
        try bytes.write(to: url)
        let marker = SnapshotMarker(index: 2, term: 1, replacesLog: false)
        let hardState = HardState(term: 3, vote: 2, commit: 2)
        do {
            let (wal, recovery) = try WriteAheadLog.open(directory: dir.path, settings: Self.small())
            #expect(recovery.entries == old)
            try wal.append(snapshot: marker)
            try wal.append(hardState: hardState, entries: [])
            try wal.sync()
        }
        let (_, again) = try WriteAheadLog.open(directory: dir.path, settings: Self.small())
        #expect(again.snapshot == marker)
        #expect(again.hardState == hardState)
        #expect(again.entries == Array(old.dropFirst(2)))
    }

    /// A crash that kept only the header of a batch carrying a snapshot:
    /// the install the restarted member writes next (a marker alone) is its
    /// own, not the torn batch's, and stands.
    @Test func anInstallAfterATornInstallBatchStands() throws {
        let old = (1...6).map { Self.entry($0) }
        let (dir, url, start, end, written) = try Self.written(old) { wal in
            try wal.append(snapshot: SnapshotMarker(index: 3, term: 2, replacesLog: true), thenEntries: (4...6).map { Self.entry($0) },
                           hardState: HardState(term: 2, vote: 1, commit: 3))
        }
        var bytes = written
        let batchHeaderRecord = 9 + 8 + 4 + 1
        bytes.replaceSubrange((start + batchHeaderRecord)..<end, with: Data(count: end - start - batchHeaderRecord))
        try bytes.write(to: url)
        let install = SnapshotMarker(index: 5, term: 3, replacesLog: true)
        do {
            let (wal, recovery) = try WriteAheadLog.open(directory: dir.path, settings: Self.small())
            #expect(recovery.entries == old && recovery.snapshot == nil)
            try wal.append(snapshot: install, thenEntries: [], hardState: HardState(term: 3, vote: 2, commit: 5))
            try wal.sync()
        }
        let (_, again) = try WriteAheadLog.open(directory: dir.path, settings: Self.small())
        #expect(again.snapshot == install)
        #expect(again.entries.isEmpty)
        #expect(again.hardState == HardState(term: 3, vote: 2, commit: 5))
    }

    /// A log holding `old` that then took `write`: its directory, its
    /// newest segment, where `write`'s bytes start and end, and the bytes.
    static func written(_ old: [Entry], then write: (WriteAheadLog) throws -> Void) throws
        -> (dir: TemporaryDirectory, url: URL, start: Int, end: Int, bytes: Data) {
        let dir = try TemporaryDirectory()
        var before = Data()
        do {
            let (wal, _) = try WriteAheadLog.open(directory: dir.path, settings: small())
            try wal.append(hardState: nil, entries: old)
            try wal.sync()
            before = try Data(contentsOf: URL(fileURLWithPath: dir.path + "/" + (try segments(dir.path)).last!))
            try write(wal)
            try wal.sync()
        }
        let url = URL(fileURLWithPath: dir.path + "/" + (try segments(dir.path)).last!)
        let bytes = try Data(contentsOf: url)
        return (dir, url, before.lastIndex { $0 != 0 }! + 1, bytes.lastIndex { $0 != 0 }! + 1, bytes)
    }

    /// Write `old`, then `write`, and cut the file at every byte of what
    /// `write` added: each recovery holds either `old` untouched or what
    /// `whole` accepts, and the log keeps working after the cut.
    static func tearEveryByte(of write: (WriteAheadLog) throws -> Void, after old: [Entry], whole: (WALRecovery) -> Bool) throws {
        let (_, url, start, end, after) = try written(old, then: write)
        let name = url.lastPathComponent
        #expect(end > start + 100)
        for cut in start...end {
            let torn = try TemporaryDirectory()
            var bytes = after
            bytes.replaceSubrange(cut..<end, with: Data(count: end - cut))
            try bytes.write(to: URL(fileURLWithPath: torn.path + "/" + name))
            let (wal, recovery) = try WriteAheadLog.open(directory: torn.path, settings: small())
            let intact = recovery.snapshot == nil && recovery.entries == old
            #expect(intact || whole(recovery), "cut at byte \(cut): \(recovery)")
            if cut == end { #expect(whole(recovery)) }
            // Written on after the cut, the log reads back what was written.
            let later = entry(5, term: 3, "later")
            try wal.append(hardState: nil, entries: [later])
            try wal.sync()
            let (_, again) = try WriteAheadLog.open(directory: torn.path, settings: small())
            #expect(again.snapshot == recovery.snapshot && again.entries == recovery.entries.filter { $0.index < 5 } + [later],
                    "cut at byte \(cut), then written on")
        }
    }

    @Test func flippedByteInAMiddleRecordRefusesToOpen() throws {
        let dir = try TemporaryDirectory()
        do {
            let (wal, _) = try WriteAheadLog.open(directory: dir.path)
            try wal.append(hardState: nil, entries: (1...50).map { Self.entry($0) })
            try wal.sync()
        }
        let name = try Self.segments(dir.path).last!
        let url = URL(fileURLWithPath: dir.path + "/" + name)
        var data = try Data(contentsOf: url)
        data[400] ^= 0x10
        try data.write(to: url)
        do {
            _ = try WriteAheadLog.open(directory: dir.path)
            Issue.record("a corrupt WAL opened")
        } catch {
            #expect(error.description.contains(name), "\(error)")
            #expect(error.description.contains("byte offset"), "\(error)")
            #expect(error.description.contains("Restore this member"), "\(error)")
        }
    }

    @Test func missingOrTruncatedMiddleSegmentRefusesToOpen() throws {
        for damage in ["delete", "truncate"] {
            let dir = try TemporaryDirectory()
            do {
                let (wal, _) = try WriteAheadLog.open(directory: dir.path, settings: Self.small())
                for i in UInt64(1)...300 { try wal.append(hardState: nil, entries: [Self.entry(i, String(repeating: "z", count: 900))]) }
                try wal.sync()
            }
            let names = try Self.segments(dir.path)
            #expect(names.count >= 3)
            let middle = dir.path + "/" + names[1]
            if damage == "delete" {
                try FileManager.default.removeItem(atPath: middle)
            } else {
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: middle))
                try handle.truncate(atOffset: 20_000)
                try handle.close()
            }
            do {
                _ = try WriteAheadLog.open(directory: dir.path, settings: Self.small())
                Issue.record("\(damage): a damaged WAL opened")
            } catch {
                #expect(error.description.contains(damage == "delete" ? "missing" : names[1]), "\(damage): \(error)")
            }
        }
    }

    @Test func hardStatePastTheLogRefusesToOpen() throws {
        let dir = try TemporaryDirectory()
        do {
            let (wal, _) = try WriteAheadLog.open(directory: dir.path)
            try wal.append(hardState: HardState(term: 1, vote: nil, commit: 9), entries: (1...3).map { Self.entry($0) })
            try wal.sync()
        }
        #expect(throws: StorageError.self) { try WriteAheadLog.open(directory: dir.path) }
    }
}

@Suite struct GroupCommitLogTests {
    /// Many threads commit at once; every commit is durable when it returns,
    /// indexes stay consecutive, and syncs are shared.
    @Test func concurrentWritersShareSyncsAndLoseNothing() throws {
        let dir = try TemporaryDirectory()
        var settings = WALSettings()
        settings.segmentBytes = 64 << 10  // force rotations under load
        let (wal, _) = try WriteAheadLog.open(directory: dir.path, settings: settings)
        let log = GroupCommitLog(wal)
        let threads = 16
        let perThread = 60
        let done = DispatchSemaphore(value: 0)
        for t in 0..<threads {
            Thread {
                for i in 0..<perThread {
                    try! log.commit { last in
                        (nil, [Entry(term: 1, index: last + 1, payload: .command(Array("t\(t)-\(i)-".utf8) + [UInt8](repeating: 7, count: 300)))])
                    }
                }
                done.signal()
            }.start()
        }
        for _ in 0..<threads { done.wait() }
        log.close()
        #expect(log.syncCount < UInt64(threads * perThread), "syncs must be shared")
        let (_, recovery) = try WriteAheadLog.open(directory: dir.path, settings: settings)
        #expect(recovery.entries.count == threads * perThread)
        #expect(recovery.entries.enumerated().allSatisfy { $0.element.index.rawValue == UInt64($0.offset + 1) })
        var seen = Set<String>()
        for e in recovery.entries {
            if case .command(let bytes) = e.payload { seen.insert(String(decoding: bytes.prefix { $0 != 7 }, as: UTF8.self)) }
        }
        #expect(seen.count == threads * perThread, "every commit is there exactly once")
    }
}

extension GroupCommitLogTests {
    @Test func asyncWritersShareSyncsAndLoseNothing() async throws {
        let dir = try TemporaryDirectory()
        let (wal, _) = try WriteAheadLog.open(directory: dir.path)
        let log = GroupCommitLog(wal)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for t in 0..<32 {
                group.addTask {
                    for i in 0..<40 {
                        try await log.commit { last in (nil, [Entry(term: 1, index: last + 1, payload: .command(Array("a\(t)-\(i)".utf8)))]) }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(log.syncCount < 32 * 40)
        log.close()
        let (_, recovery) = try WriteAheadLog.open(directory: dir.path)
        #expect(recovery.entries.count == 32 * 40)
        #expect(Set(recovery.entries.map { "\($0.payload)" }).count == 32 * 40)
    }
}
