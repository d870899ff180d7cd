import Foundation
import Glibc
@testable import Server
import Testing

/// etcd's JSON gateway on the client URL, driven with curl as etcd's own
/// e2e tests and users drive it; the bodies expected are etcd 3.4's.
@Suite(.serialized) struct GatewayTests {
    struct Reply {
        var code: Int
        var body: String
        /// The body's JSON, when it is one object.
        var json: [String: Any]? { try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] }
    }

    /// POST `body` to a member's client URL; with `seconds`, curl gives up
    /// then (a stream is read until that time).
    static func post(_ cluster: TestCluster, _ i: Int, _ path: String, _ body: String, seconds: Int = 10,
                     headers: [String] = []) throws -> Reply {
        let arguments = ["-s", "-m", "\(seconds)", "-w", "\n%{http_code}", "-d", body] + headers.flatMap { ["-H", $0] }
            + ["http://\(cluster.endpoint(i))\(path)"]
        let output = try TestCluster.run("/usr/bin/curl", arguments, timeout: Double(seconds) + 5)
        var lines = output.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        let code = Int(lines.popLast() ?? "") ?? 0
        return Reply(code: code, body: lines.joined(separator: "\n"))
    }

    static func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    static func field(_ json: [String: Any]?, _ path: String...) -> Any? {
        var current: Any? = json
        for key in path { current = (current as? [String: Any])?[key] }
        return current
    }

    @Test func kvLeaseClusterAndMaintenanceSpeakEtcdsJSON() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        let foo = Self.base64("foo"), bar = Self.base64("bar")
        // A write on any member, read back on another; revisions are strings.
        let put = try Self.post(cluster, 1, "/v3/kv/put", #"{"key":"\#(foo)","value":"\#(bar)"}"#)
        #expect(put.code == 200, "\(put)")
        let revision = Self.field(put.json, "header", "revision") as? String
        #expect(revision != nil && Int(revision!)! >= 2, "\(put.body)")
        let range = try Self.post(cluster, 2, "/v3beta/kv/range", #"{"key":"\#(foo)"}"#)
        let kvs = Self.field(range.json, "kvs") as? [[String: Any]]
        #expect(kvs?.first?["value"] as? String == bar, "\(range.body)")
        #expect(Self.field(range.json, "count") as? String == "1")
        // A transaction: compare, success branch, nested responses as etcd's.
        let txn = try Self.post(cluster, 0, "/v3/kv/txn",
            #"{"compare":[{"key":"\#(foo)","result":"EQUAL","target":"VALUE","value":"\#(bar)"}],"success":[{"request_put":{"key":"\#(foo)","value":"\#(Self.base64("baz"))"}}]}"#)
        let txnRevision = try #require(Self.field(txn.json, "header", "revision") as? String, "\(txn.body)")
        #expect(txn.body.hasSuffix(#""succeeded":true,"responses":[{"response_put":{"header":{"revision":"\#(txnRevision)"}}}]}"#), "\(txn.body)")
        // Inner headers as etcd's applier fills them: a read before the
        // first write sees the old revision, after it the new one; a nested
        // transaction's header is empty.
        let nested = try Self.post(cluster, 0, "/v3/kv/txn",
            #"{"success":[{"request_range":{"key":"\#(foo)"}},{"request_delete_range":{"key":"\#(Self.base64("absent"))"}},{"request_txn":{"success":[{"request_put":{"key":"\#(Self.base64("n"))"}}]}},{"request_range":{"key":"\#(foo)","count_only":true}}]}"#)
        let after = try #require(Int(Self.field(nested.json, "header", "revision") as? String ?? ""), "\(nested.body)")
        #expect(nested.body.contains(#""responses":[{"response_range":{"header":{"revision":"\#(after - 1)"},"kvs":["#), "\(nested.body)")
        #expect(nested.body.contains(#"{"response_delete_range":{"header":{"revision":"\#(after - 1)"}}},{"response_txn":{"header":{},"succeeded":true,"responses":[{"response_put":{"header":{"revision":"\#(after)"}}}]}},{"response_range":{"header":{"revision":"\#(after)"},"count":"1"}}]"#), "\(nested.body)")
        // An empty operation is refused before proposing, as etcd refuses it.
        let malformed = try Self.post(cluster, 0, "/v3/kv/txn",
            #"{"compare":[{"result":0,"target":1,"key":"Zm9v","TargetUnion":null}],"success":[{"Request":{"RequestPut":{"key":"Zm9v","value":"YmFy"}}}]}"#)
        #expect(malformed.code == 400)
        #expect(malformed.body == #"{"error":"etcdserver: key not found","message":"etcdserver: key not found","code":3}"#)
        let empty = try Self.post(cluster, 0, "/v3/kv/put", #"{"value":"\#(bar)"}"#)
        #expect(empty.code == 400)
        #expect(empty.body == #"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}"#)
        let deleted = try Self.post(cluster, 2, "/v3/kv/deleterange", #"{"key":"\#(foo)","prev_kv":true}"#)
        #expect(Self.field(deleted.json, "deleted") as? String == "1", "\(deleted.body)")

        // Leases: grant with an ID, attach, time to live with keys, list,
        // keep alive (a stream of one), revoke, and etcd's error after.
        let grant = try Self.post(cluster, 0, "/v3/lease/grant", #"{"ID":4242,"TTL":30}"#)
        #expect(grant.body.contains(#""ID":"4242","TTL":"30""#), "\(grant.body)")
        #expect(try Self.post(cluster, 1, "/v3/kv/put", #"{"key":"\#(Self.base64("leased"))","value":"\#(bar)","lease":"4242"}"#).code == 200)
        let ttl = try Self.post(cluster, 2, "/v3/kv/lease/timetolive", #"{"ID":4242,"keys":true}"#)
        #expect(ttl.body.contains(#""grantedTTL":"30""#) && ttl.body.contains(Self.base64("leased")), "\(ttl.body)")
        #expect(try Self.post(cluster, 1, "/v3/lease/leases", "{}").body.contains(#"{"ID":"4242"}"#))
        let keepAlive = try Self.post(cluster, 1, "/v3/lease/keepalive", #"{"ID":4242}"#)
        #expect(keepAlive.body.hasPrefix(#"{"result":{"header":"#) && keepAlive.body.contains(#""ID":"4242","TTL":"30"}}"#), "\(keepAlive.body)")
        #expect(try Self.post(cluster, 0, "/v3/lease/revoke", #"{"ID":4242}"#).code == 200)
        let again = try Self.post(cluster, 0, "/v3/kv/lease/revoke", #"{"ID":4242}"#)
        #expect(again.code == 404)
        #expect(again.body == #"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#)

        // Cluster and maintenance.
        let members = Self.field(try Self.post(cluster, 0, "/v3/cluster/member/list", "{}").json, "members") as? [[String: Any]]
        #expect(members?.count == 3)
        let status = try Self.post(cluster, 2, "/v3/maintenance/status", "{}")
        #expect(Self.field(status.json, "leader") as? String != nil, "\(status.body)")
        // /v3/maintenance/hash is HashKV in etcd's gateway; the members agree.
        let hashes = try (0..<3).map { Self.field(try Self.post(cluster, $0, "/v3/maintenance/hash", #"{"revision":"\#(revision!)"}"#).json, "hash") as? Int }
        #expect(hashes[0] != nil && Set(hashes).count == 1, "\(hashes)")

        // What grpc-gateway answers outside its methods, and for bad JSON.
        #expect(try Self.post(cluster, 0, "/v3/kv/nothing", "{}").body == "Not Found\n")
        let get = try TestCluster.run("/usr/bin/curl", ["-s", "-w", "\n%{http_code}", "http://\(cluster.endpoint(0))/v3/kv/range"], timeout: 10)
        #expect(get.stdout == "Method Not Allowed\n\n405")
        let truncated = try Self.post(cluster, 0, "/v3/kv/range", #"{"key":"#)
        #expect(truncated.code == 400 && truncated.body == #"{"error":"unexpected EOF","message":"unexpected EOF","code":3}"#)
        // etcd's CORS headers, on every answer.
        let headers = try TestCluster.run("/usr/bin/curl", ["-s", "-D", "-", "-o", "/dev/null", "-d", "{}", "http://\(cluster.endpoint(0))/v3/maintenance/status"], timeout: 10)
        #expect(headers.stdout.contains("Access-Control-Allow-Origin: *"), "\(headers.stdout)")
    }

    @Test func aWatchStreamsEventsUntilTheClientLeaves() throws {
        let cluster = try TestCluster(size: 1)
        defer { cluster.cleanUp() }
        #expect(try Self.post(cluster, 0, "/v3/kv/put", #"{"key":"\#(Self.base64("w"))","value":"\#(Self.base64("one"))"}"#).code == 200)
        nonisolated(unsafe) var watched: Reply?
        let done = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            // From revision 1: the past event at once, then the live one.
            watched = try? Self.post(cluster, 0, "/v3/watch", #"{"create_request":{"key":"\#(Self.base64("w"))","start_revision":1}}"#, seconds: 4)
            done.signal()
        }
        usleep(1_500_000)
        #expect(try Self.post(cluster, 0, "/v3/kv/put", #"{"key":"\#(Self.base64("w"))","value":"\#(Self.base64("two"))"}"#).code == 200)
        done.wait()
        let lines = watched?.body.split(separator: "\n").map(String.init) ?? []
        #expect(lines.count == 3, "\(lines)")
        #expect(lines.first?.contains(#""created":true"#) == true)
        #expect(lines.dropFirst().first?.contains(Self.base64("one")) == true)
        #expect(lines.last?.contains(Self.base64("two")) == true)
        #expect(lines.allSatisfy { $0.hasPrefix(#"{"result":{"#) })
    }

    /// etcd's `--max-concurrent-streams` bounds what one URL's gateway
    /// runs at once (etcd's e2e TestV3Curl_MaxStreams_*): with the limit
    /// taken by watches, a range waits until one of them ends.
    @Test func gatewayCallsWaitBeyondMaxConcurrentStreams() throws {
        let cluster = try TestCluster(size: 1, extraArguments: ["--max-concurrent-streams", "2"])
        defer { cluster.cleanUp() }
        let watch = #"{"create_request":{"key":"\#(Self.base64("x"))"}}"#
        let watchers = (0..<2).map { _ in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/curl")
            process.arguments = ["-s", "-m", "60", "-o", "/dev/null", "-d", watch, "http://\(cluster.endpoint(0))/v3/watch"]
            return process
        }
        for watcher in watchers { try watcher.run() }
        defer { for watcher in watchers where watcher.isRunning { kill(watcher.processIdentifier, SIGKILL) } }
        usleep(1_500_000)
        let blocked = try Self.post(cluster, 0, "/v3/kv/range", #"{"key":"\#(Self.base64("x"))"}"#, seconds: 2)
        #expect(blocked.code == 0, "a range answered beyond the stream limit: \(blocked)")
        kill(watchers[0].processIdentifier, SIGKILL)
        watchers[0].waitUntilExit()
        let served = try Self.post(cluster, 0, "/v3/kv/range", #"{"key":"\#(Self.base64("x"))"}"#, seconds: 5)
        #expect(served.code == 200, "\(served)")
    }

    /// etcd's Lock and Election services (on the gateway here; gRPC
    /// clients reach the same handlers): the concurrency recipes, waiters
    /// that leave withdraw, and create revisions that fence.
    @Test func locksAndElectionsAsEtcdsServerRunsThem() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        let name = Self.base64("jobs")
        let first = try Self.post(cluster, 0, "/v3/lock/lock", #"{"name":"\#(name)"}"#)
        let held = try #require(Self.field(first.json, "key") as? String, "\(first)")
        #expect(String(decoding: Data(base64Encoded: held)!, as: UTF8.self).hasPrefix("jobs/"))
        // A second caller waits; when it gives up, its key leaves the queue.
        let waiter = try Self.post(cluster, 1, "/v3/lock/lock", #"{"name":"\#(name)"}"#, seconds: 2)
        #expect(waiter.code == 0, "the lock was granted twice: \(waiter)")
        usleep(500_000)
        let queued = try cluster.etcdctl("get", "--prefix", "jobs/", "--keys-only")
        #expect(queued.stdout.split(separator: "\n").filter { !$0.isEmpty }.count == 1, "\(queued.stdout)")
        // etcd's lock server gets its KV's errors as plain Go errors: code 2.
        let keyless = try Self.post(cluster, 0, "/v3/lock/unlock", "{}")
        #expect(keyless.code == 500)
        #expect(keyless.body == #"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":2}"#)
        // Unlock lets the next caller in, with a later create revision.
        #expect(try Self.post(cluster, 2, "/v3/lock/unlock", #"{"key":"\#(held)"}"#).code == 200)
        let next = try Self.post(cluster, 2, "/v3/lock/lock", #"{"name":"\#(name)"}"#, seconds: 5)
        #expect(next.code == 200, "\(next)")

        let election = Self.base64("/election-prefix")
        let campaign = try Self.post(cluster, 0, "/v3/election/campaign", #"{"name":"\#(election)","value":"\#(Self.base64("v1"))"}"#)
        let leader = try #require(Self.field(campaign.json, "leader") as? [String: Any], "\(campaign)")
        let leaderJSON = String(decoding: try JSONSerialization.data(withJSONObject: leader), as: UTF8.self)
        let proclaimed = try Self.post(cluster, 1, "/v3/election/proclaim", #"{"leader":\#(leaderJSON),"value":"\#(Self.base64("v2"))"}"#)
        #expect(proclaimed.body.contains(#""revision":"#), "\(proclaimed)")
        let current = try Self.post(cluster, 2, "/v3/election/leader", #"{"name":"\#(election)"}"#)
        #expect(Self.field(current.json, "kv", "value") as? String == Self.base64("v2"), "\(current)")
        #expect(Self.field(current.json, "kv", "create_revision") as? String == leader["rev"] as? String)
        let observed = try Self.post(cluster, 1, "/v3/election/observe", #"{"name":"\#(election)"}"#, seconds: 2)
        #expect(observed.body.contains(Self.base64("v2")), "\(observed)")
        // etcd's own words for a request without its leader key.
        let missing = try Self.post(cluster, 0, "/v3/election/proclaim", #"{"value":"\#(Self.base64("v2"))"}"#)
        #expect(missing.body == #"{"error":"\"leader\" field must be provided","message":"\"leader\" field must be provided","code":2}"#)
        #expect(try Self.post(cluster, 0, "/v3/election/resign", #"{"leader":\#(leaderJSON)}"#).code == 200)
        let none = try Self.post(cluster, 0, "/v3/election/leader", #"{"name":"\#(election)"}"#)
        #expect(none.body.contains("election: no leader"), "\(none)")
        // A stale leader's proclamation is refused: the revision fences it.
        let stale = try Self.post(cluster, 2, "/v3/election/proclaim", #"{"leader":\#(leaderJSON),"value":"\#(Self.base64("v3"))"}"#)
        #expect(stale.body.contains("election: not leader"), "\(stale)")
    }

    @Test func requestBodiesSplitAsGosDecoderReadsThem() throws {
        func split(_ text: String) throws -> [String] {
            try GatewayJSON.values(Array(text.utf8)).map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(try split("") == [])
        #expect(try split(#" {"a":"}{"} {"b":[1,{"c":2}]}"#) == [#"{"a":"}{"}"#, #"{"b":[1,{"c":2}]}"#])
        #expect(try split(#"{"a":"\"}"}"#) == [#"{"a":"\"}"}"#])
        #expect(try split("null 7") == ["null", "7"])
        #expect(throws: (any Error).self) { try split(#"{"key":"#) }
        #expect(throws: (any Error).self) { try split("}") }
        #expect(GatewayJSON.quoted("a<b>&\"\\\n\u{1}") == #""a\u003cb\u003e\u0026\"\\\n\u0001""#)
    }
}
