import Consensus
import Foundation
@testable import Storage
import Testing

/// The node applies a Ready's entries in one LMDB commit: each write stays
/// atomic on its own, the batch reads its own writes, and everything is
/// there after reopening.
@Suite struct MVCCBatchTests {
    @Test func aBatchReadsItsOwnWritesRollsBackOnlyTheFailedOneAndPersists() throws {
        let directory = try TemporaryDirectory()
        var settings = MVCCSettings()
        settings.leasesMustExist = true
        do {
            let store = try MVCCStore(directory: directory.path, settings: settings)
            try store.batch { () throws(StorageError) in
                try store.apply([.put(key: [1], value: [1], lease: 0)], index: 1)
                try store.grantLease(LeaseRecord(id: 7, ttl: 30), index: 2)
                // A put on the lease granted earlier in the same batch sees it.
                try store.apply([.put(key: [2], value: [2], lease: 7)], index: 3)
                // A failing write (unknown lease) rolls back alone, the batch goes on.
                #expect(throws: StorageError.leaseNotFound) {
                    try store.apply([.put(key: [3], value: [3], lease: 0), .put(key: [4], value: [4], lease: 99)], index: 4)
                }
                // Reads inside the batch see the batch.
                #expect(try store.range(RangeRequest(key: [1], rangeEnd: [0])).kvs.map(\.key) == [[1], [2]])
                #expect(try store.lease(7) == LeaseRecord(id: 7, ttl: 30))
                try store.apply([.deleteRange(key: [1], rangeEnd: [])], index: 5)
            }
            #expect(store.currentRevision == 4, "two writing revisions after etcd's first")
            #expect(store.appliedIndex == 5)
        }
        let reopened = try MVCCStore(directory: directory.path, settings: settings)
        #expect(reopened.appliedIndex == 5)
        #expect(reopened.currentRevision == 4)
        #expect(try reopened.range(RangeRequest(key: [0], rangeEnd: [0])).kvs.map(\.key) == [[2]])
        #expect(try reopened.keys(attachedTo: 7) == [[2]])
        #expect(try reopened.revokeLease(7).map(\.key) == [[2]])
        #expect(try reopened.leases().isEmpty)
    }

    /// A single write and a transaction of one operation per branch go
    /// straight into the batch, with no child transaction (`LMDBEnvironment.write(inPlace:)`):
    /// their refusals come before they write, so a refused one leaves
    /// nothing behind, and the batch goes on.
    @Test func aRefusedSingleWriteLeavesNothingInTheBatch() throws {
        let directory = try TemporaryDirectory()
        var settings = MVCCSettings()
        settings.leasesMustExist = true
        let store = try MVCCStore(directory: directory.path, settings: settings)
        try store.batch { () throws(StorageError) in
            try store.apply([.put(key: [1], value: [1], lease: 0)], index: 1)
            #expect(throws: StorageError.leaseNotFound) {
                try store.apply([.put(key: [2], value: [2], lease: 99)], index: 2)
            }
            #expect(throws: StorageError.keyNotFound) {
                try store.txn(TxnRequest(success: [.put(key: [3], value: [], lease: 0, options: .ignoreValue)]), index: 3)
            }
            // Two operations: the second refuses after the first wrote, and the child rolls both back.
            #expect(throws: StorageError.keyNotFound) {
                try store.txn(TxnRequest(success: [.put(key: [4], value: [4], lease: 0),
                                                   .put(key: [5], value: [], lease: 0, options: .ignoreValue)]), index: 4)
            }
            let response = try store.txn(TxnRequest(success: [.put(key: [6], value: [6], lease: 0)]), index: 5)
            #expect(response.revision == 3)
        }
        #expect(store.currentRevision == 3)
        #expect(store.appliedIndex == 5)
        #expect(try store.range(RangeRequest(key: [0], rangeEnd: [0])).kvs.map(\.key) == [[1], [6]])
    }

    /// What makes writing in place safe: a body that refuses after it
    /// wrote cannot be rolled back, so it stops the process instead of
    /// leaving half a request in the batch.
    @Test func aRefusalAfterAWriteInPlaceStopsTheProcess() async throws {
        let result = try await #require(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let directory = try TemporaryDirectory()
            let store = try MVCCStore(directory: directory.path, settings: MVCCSettings())
            // Without the check, the refusal comes back as an error and the process ends normally.
            _ = try? store.batch { () throws(StorageError) in
                try store.environment.write(inPlace: true) { txn throws(StorageError) in
                    try txn.put(store.metaDB, [9], [9])
                    throw StorageError.keyNotFound
                }
            }
        }
        let stderr = String(decoding: result.standardErrorContent, as: UTF8.self)
        #expect(stderr.contains("after 1 writes into the open batch"), "\(stderr)")
    }
}
