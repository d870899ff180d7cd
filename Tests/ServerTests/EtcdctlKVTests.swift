import Foundation
import Testing

/// Debian's etcdctl (3.4) against a real 3-member Ballot cluster: what an
/// operator types, with the output etcd would print.
@Suite(.serialized) struct EtcdctlKVTests {
    @Test func putGetDeleteWithPrefixesAndRanges() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        for (key, value) in [("foo/a", "1"), ("foo/b", "2"), ("foo/c", "3"), ("bar", "x")] {
            let put = try cluster.etcdctl("put", key, value)
            #expect(put.stdout == "OK\n", "\(put.stderr)")
        }
        // Every member serves the same data, linearizably, whichever it is.
        for i in 0..<3 {
            let get = try cluster.etcdctl("get", "foo", "--prefix", endpoints: cluster.endpoint(i))
            #expect(get.stdout == "foo/a\n1\nfoo/b\n2\nfoo/c\n3\n", "member \(i): \(get.stderr)")
        }
        #expect(try cluster.etcdctl("get", "foo/a", "foo/c").stdout == "foo/a\n1\nfoo/b\n2\n")
        #expect(try cluster.etcdctl("get", "foo", "--from-key", "--limit", "1").stdout == "foo/a\n1\n")
        #expect(try cluster.etcdctl("get", "foo", "--prefix", "--keys-only", "--sort-by=KEY", "--order=DESCEND").stdout
            == "foo/c\n\nfoo/b\n\nfoo/a\n\n")
        #expect(try cluster.etcdctl("get", "foo", "--prefix", "--limit", "1", "-w", "fields").stdout.contains("\"Count\" : 3"))
        let serializable = try cluster.etcdctl("get", "bar", "--consistency=s", endpoints: cluster.endpoint(2))
        #expect(serializable.stdout == "bar\nx\n")

        #expect(try cluster.etcdctl("del", "foo/b", "--prev-kv").stdout == "1\nfoo/b\n2\n")
        #expect(try cluster.etcdctl("del", "foo", "--prefix").stdout == "2\n")
        #expect(try cluster.etcdctl("get", "foo", "--prefix").stdout == "")
        #expect(try cluster.etcdctl("get", "bar").stdout == "bar\nx\n")
    }

    @Test func headersCarryClusterMemberRevisionAndTerm() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        try cluster.etcdctl("put", "k", "v1")
        try cluster.etcdctl("put", "k", "v2")
        let json = try cluster.etcdctl("get", "k", "-w", "json")
        let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
        let header = object?["header"] as? [String: Any]
        #expect((header?["cluster_id"] as? NSNumber)?.uint64Value ?? 0 != 0, "\(json.stdout)")
        #expect((header?["member_id"] as? NSNumber)?.uint64Value ?? 0 != 0)
        #expect((header?["raft_term"] as? NSNumber)?.uint64Value ?? 0 >= 2)
        // History starts at revision 1, as etcd's; the readiness probe
        // wrote revision 2, then two puts.
        #expect((header?["revision"] as? NSNumber)?.int64Value == 4)
        let kv = (object?["kvs"] as? [[String: Any]])?.first
        #expect((kv?["version"] as? NSNumber)?.intValue == 2)
        #expect((kv?["create_revision"] as? NSNumber)?.intValue == 3)
        #expect((kv?["mod_revision"] as? NSNumber)?.intValue == 4)
    }

    @Test func interactiveTxnTakesTheRightBranch() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        try cluster.etcdctl("put", "user", "alice")
        // etcdctl's interactive syntax: compares, blank line, success ops, blank line, failure ops.
        let success = try cluster.etcdctl("txn", input: "value(\"user\") = \"alice\"\n\nput user bob\nget user\n\nput user carol\n\n")
        #expect(success.stdout == "SUCCESS\n\nOK\n\nuser\nbob\n", "\(success.stderr)")
        let failure = try cluster.etcdctl("txn", input: "value(\"user\") = \"alice\"\n\nput user dave\n\nput user erin\n\n")
        #expect(failure.stdout == "FAILURE\n\nOK\n", "\(failure.stderr)")
        #expect(try cluster.etcdctl("get", "user").stdout == "user\nerin\n")
        let versions = try cluster.etcdctl("txn", input: "ver(\"user\") > \"1\"\nmod(\"missing\") = \"0\"\n\nget user\n\n\n")
        #expect(versions.stdout == "SUCCESS\n\nuser\nerin\n")
    }

    @Test func compactionRefusesOldRevisionsWithEtcdsError() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        for value in ["a", "b", "c"] { try cluster.etcdctl("put", "key", value) }
        // The probe wrote revision 2; a, b, c are revisions 3, 4, 5.
        #expect(try cluster.etcdctl("get", "key", "--rev=3").stdout == "key\na\n")
        #expect(try cluster.etcdctl("compact", "4", "--physical").stdout == "compacted revision 4\n")
        let old = try cluster.etcdctl("get", "key", "--rev=3")
        #expect(old.status != 0)
        #expect(old.stderr.contains("etcdserver: mvcc: required revision has been compacted"))
        #expect(try cluster.etcdctl("get", "key", "--rev=4").stdout == "key\nb\n")
        #expect(try cluster.etcdctl("get", "key").stdout == "key\nc\n")
        // The server keeps serving after refusing.
        #expect(try cluster.etcdctl("put", "key", "d").stdout == "OK\n")
    }

    @Test func badRequestsGetEtcdsErrorsAndNothingIsLost() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        try cluster.etcdctl("put", "keep", "me")
        let empty = try cluster.etcdctl("put", "", "x")
        #expect(empty.stderr.contains("etcdserver: key is not provided"))
        // Over --max-request-bytes (1.5 MiB) but within gRPC's framing allowance,
        // so the server itself answers, with etcd's message. Given on stdin:
        // one argument cannot be that long.
        let tooLarge = try cluster.etcdctl("put", "big", input: String(repeating: "v", count: 1_600_000))
        #expect(tooLarge.status != 0)
        #expect(tooLarge.stderr.contains("etcdserver: request is too large"), "\(tooLarge.stderr)")
        let future = try cluster.etcdctl("get", "keep", "--rev=999")
        #expect(future.stderr.contains("etcdserver: mvcc: required revision is a future revision"))
        #expect(try cluster.etcdctl("get", "keep").stdout == "keep\nme\n")
    }
}

extension EtcdctlKVTests {
    /// --max-request-bytes is the one limit: a raised limit lets bigger values
    /// through consensus, and a request over it gets etcd's error.
    @Test func aRaisedRequestLimitCarriesThroughConsensus() throws {
        // Between the default 1.5 MiB and etcdctl's own 2 MiB send limit.
        let cluster = try TestCluster(extraArguments: ["--max-request-bytes", "1900000"])
        defer { cluster.cleanUp() }
        let put = try cluster.etcdctl("put", "big", input: String(repeating: "b", count: 1_800_000))
        #expect(put.stdout == "OK\n", "\(put.stderr)")
        let value = try cluster.etcdctl("get", "big", "--print-value-only", endpoints: cluster.endpoint(2))
        #expect(value.stdout.count == 1_800_001)
        let over = try cluster.etcdctl("put", "bigger", input: String(repeating: "b", count: 1_950_000))
        #expect(over.stderr.contains("etcdserver: request is too large"), "\(over.stderr)")
    }
}
