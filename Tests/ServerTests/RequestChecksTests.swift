import EtcdAPI
import GRPCCore
import Foundation
@testable import Server
import StateMachine
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

/// etcd's statuses, code and message, from etcd 3.4's
/// `etcdserver/api/v3rpc/rpctypes/error.go`: a client (and the JSON
/// gateway's HTTP status) tells errors apart by both.
@Suite struct EtcdErrorTests {
    static let etcds: [(EtcdError, RPCError.Code, String)] = [
        (.emptyKey, .invalidArgument, "etcdserver: key is not provided"),
        (.keyNotFound, .invalidArgument, "etcdserver: key not found"),
        (.valueProvided, .invalidArgument, "etcdserver: value is provided"),
        (.leaseProvided, .invalidArgument, "etcdserver: lease is provided"),
        (.tooManyOperations, .invalidArgument, "etcdserver: too many operations in txn request"),
        (.duplicateKey, .invalidArgument, "etcdserver: duplicate key given in txn request"),
        (.compacted, .outOfRange, "etcdserver: mvcc: required revision has been compacted"),
        (.futureRevision, .outOfRange, "etcdserver: mvcc: required revision is a future revision"),
        (.noSpace, .resourceExhausted, "etcdserver: mvcc: database space exceeded"),
        (.leaseNotFound, .notFound, "etcdserver: requested lease not found"),
        (.leaseExists, .failedPrecondition, "etcdserver: lease already exists"),
        (.leaseTTLTooLarge, .outOfRange, "etcdserver: too large lease TTL"),
        (.memberExists, .failedPrecondition, "etcdserver: member ID already exist"),
        (.peerURLExists, .failedPrecondition, "etcdserver: Peer URLs already exists"),
        (.memberNotFound, .notFound, "etcdserver: member not found"),
        (.memberNotLearner, .failedPrecondition, "etcdserver: can only promote a learner member"),
        (.learnerNotReady, .failedPrecondition, "etcdserver: can only promote a learner member which is in sync with leader"),
        (.requestTooLarge, .invalidArgument, "etcdserver: request is too large"),
        (.tooManyRequests, .resourceExhausted, "etcdserver: too many requests"),
        (.noLeader, .unavailable, "etcdserver: no leader"),
        (.notCapable, .unavailable, "etcdserver: not capable"),
        (.stopped, .unavailable, "etcdserver: server stopped"),
        (.timeout, .unavailable, "etcdserver: request timed out"),
        (.unhealthy, .unavailable, "etcdserver: unhealthy cluster"),
        (.badLeaderTransferee, .failedPrecondition, "etcdserver: bad leader transferee"),
    ]

    @Test func codesAndMessagesAreEtcds() {
        for (error, code, message) in Self.etcds {
            #expect(error.rpcError.code == code, "\(error)")
            #expect(error.rpcError.message == message, "\(error)")
        }
    }

    @Test func anEmptyTxnOperationIsKeyNotFoundAsInEtcd() {
        #expect(RequestChecksTests.refusal(RequestChecksTests.txn([Etcdserverpb_RequestOp()])) == .keyNotFound)
    }
}
