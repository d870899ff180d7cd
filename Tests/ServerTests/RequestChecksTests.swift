import EtcdAPI
import Foundation
@testable import Server
import Testing

/// etcd's refusals before proposing (v3rpc key.go), case by case.
@Suite struct RequestChecksTests {
    static func put(_ key: String) -> Etcdserverpb_RequestOp {
        var op = Etcdserverpb_RequestOp()
        op.requestPut.key = Data(key.utf8)
        return op
    }

    static func delete(_ key: String, _ end: String = "") -> Etcdserverpb_RequestOp {
        var op = Etcdserverpb_RequestOp()
        op.requestDeleteRange.key = Data(key.utf8)
        op.requestDeleteRange.rangeEnd = Data(end.utf8)
        return op
    }

    static func nested(_ success: [Etcdserverpb_RequestOp], _ failure: [Etcdserverpb_RequestOp] = []) -> Etcdserverpb_RequestOp {
        var op = Etcdserverpb_RequestOp()
        op.requestTxn.success = success
        op.requestTxn.failure = failure
        return op
    }

    static func txn(_ success: [Etcdserverpb_RequestOp], _ failure: [Etcdserverpb_RequestOp] = [], compares: Int = 0) -> Etcdserverpb_TxnRequest {
        var t = Etcdserverpb_TxnRequest()
        t.success = success
        t.failure = failure
        t.compare = (0..<compares).map { i in
            var c = Etcdserverpb_Compare()
            c.key = Data("c\(i)".utf8)
            return c
        }
        return t
    }

    static func refusal(_ request: Etcdserverpb_TxnRequest, max: Int = 128) -> EtcdError? {
        do throws(EtcdError) {
            try RequestChecks.txn(request, maxOperations: max)
            return nil
        } catch { return error }
    }

    @Test func operationsAreCountedPerListAsEtcdCounts() {
        // 128 compares and 128 puts: each list within the limit, as etcd allows.
        #expect(Self.refusal(Self.txn((0..<128).map { Self.put("k\($0)") }, compares: 128)) == nil)
        #expect(Self.refusal(Self.txn((0..<129).map { Self.put("k\($0)") })) == .tooManyOperations)
        #expect(Self.refusal(Self.txn([], compares: 129)) == .tooManyOperations)
        // A nested transaction gets what its parent's longest list leaves.
        let inner = Self.nested((0..<3).map { Self.put("n\($0)") })
        #expect(Self.refusal(Self.txn([inner, Self.put("a")]), max: 5) == nil)
        #expect(Self.refusal(Self.txn([inner, Self.put("a"), Self.put("b")]), max: 5) == .tooManyOperations)
    }

    @Test func deepNestingIsAcceptedAsEtcdAcceptsIt() {
        var op = Self.put("leaf")
        for _ in 0..<20 { op = Self.nested([op]) }
        #expect(Self.refusal(Self.txn([op])) == nil)
    }

    @Test func duplicateKeysFollowEtcdsIntervals() {
        #expect(Self.refusal(Self.txn([Self.put("a"), Self.put("a")])) == .duplicateKey)
        #expect(Self.refusal(Self.txn([Self.put("b"), Self.delete("a", "c")])) == .duplicateKey, "a put inside a deleted range")
        #expect(Self.refusal(Self.txn([Self.put("a"), Self.delete("b")])) == nil)
        // The two branches of a nested transaction may put the same key.
        #expect(Self.refusal(Self.txn([Self.nested([Self.put("x")], [Self.put("x")])])) == nil)
        #expect(Self.refusal(Self.txn([Self.nested([Self.put("x")]), Self.put("x")])) == .duplicateKey)
        #expect(Self.refusal(Self.txn([Self.nested([Self.delete("x")]), Self.put("x")])) == .duplicateKey)
        // Separate top-level branches are independent.
        #expect(Self.refusal(Self.txn([Self.put("a")], [Self.put("a")])) == nil)
    }

    @Test func emptyKeysAreRefusedEverywhere() {
        var emptyCompare = Self.txn([])
        emptyCompare.compare = [Etcdserverpb_Compare()]
        #expect(Self.refusal(emptyCompare) == .emptyKey)
        #expect(Self.refusal(Self.txn([Self.put("")])) == .emptyKey)
        var range = Etcdserverpb_RequestOp()
        range.requestRange = Etcdserverpb_RangeRequest()
        #expect(Self.refusal(Self.txn([range])) == .emptyKey)
        #expect(throws: EtcdError.emptyKey) { try RequestChecks.range(Etcdserverpb_RangeRequest()) }
    }
}
