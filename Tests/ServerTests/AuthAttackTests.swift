import Foundation
import Testing

/// With auth on, every RPC is called three ways a client without the right
/// may try: with no token, with an expired JWT, and with the token of a
/// user whose role reads only `bob/`. Each RPC etcd guards refuses each
/// with etcd's error; those etcd 3.4 leaves open stay open, or check only
/// that a token given is valid, as etcd's do. A watch on a forbidden range
/// is refused and sees nothing written there. Every refusal is audited:
/// logged with its user and client address, and counted in /metrics.
@Suite(.serialized) struct AuthAttackTests {
    /// What a call with each credential gets: refused with this text in
    /// its answer, or served (no auth refusal in it).
    enum Outcome: Equatable {
        case refused(String)
        case served
    }

    struct Call {
        var path: String
        var body: String
        var none: Outcome
        var expired: Outcome
        var unpermitted: Outcome
    }

    static let userEmpty = Outcome.refused("user name is empty")
    static let invalidToken = Outcome.refused("invalid auth token")
    static let denied = Outcome.refused("permission denied")

    /// Guarded: refused whoever lacks the right.
    static func guarded(_ path: String, _ body: String) -> Call {
        Call(path: path, body: body, none: userEmpty, expired: invalidToken, unpermitted: denied)
    }

    /// etcd 3.4 checks only that a token given is valid (Compact, LeaseGrant, Alarm).
    static func tokenChecked(_ path: String, _ body: String) -> Call {
        Call(path: path, body: body, none: .served, expired: invalidToken, unpermitted: .served)
    }

    /// etcd 3.4 checks nothing (MemberList, Status, LeaseLeases, LeaseTimeToLive without keys).
    static func open(_ path: String, _ body: String) -> Call {
        Call(path: path, body: body, none: .served, expired: .served, unpermitted: .served)
    }

    static let refusalTexts = ["user name is empty", "invalid auth token", "permission denied", "revision of auth store is old"]

    @Test func everyRPCRefusesWhoeverLacksTheRight() throws {
        let jwtKey = NSTemporaryDirectory() + "ballot-jwt-" + UUID().uuidString
        try Data("a shared HMAC secret for the attack test".utf8).write(to: URL(fileURLWithPath: jwtKey))
        defer { try? FileManager.default.removeItem(atPath: jwtKey) }
        let cluster = try TestCluster(extraArguments: ["--auth-token", "jwt,priv-key=\(jwtKey),sign-method=HS256,ttl=2s", "--bcrypt-cost", "4"])
        defer { cluster.cleanUp() }
        let root = ["--user", "root:root"]
        try EtcdctlAuthTests.enableAuth(cluster)
        for setup in [["role", "add", "bob-r"], ["role", "grant-permission", "bob-r", "read", "--prefix", "bob/"],
                      ["user", "add", "bob:bob"], ["user", "grant-role", "bob", "bob-r"], ["put", "secret/x", "1"]] {
            let out = try cluster.run(etcdctl: root + setup)
            try #require(out.status == 0, "\(setup): \(out.stderr)")
        }
        let grant = try cluster.run(etcdctl: root + ["lease", "grant", "600"]).stdout
        let lease = try #require(grant.split(separator: " ").dropFirst().first.map(String.init), "\(grant)")
        try cluster.run(etcdctl: root + ["put", "secret/leased", "1", "--lease=\(lease)"])
        let leaseID = try #require(UInt64(lease, radix: 16))

        func token(_ name: String, _ password: String) throws -> String {
            let login = try GatewayTests.post(cluster, 0, "/v3/auth/authenticate", #"{"name":"\#(name)","password":"\#(password)"}"#)
            return try #require((try? JSONSerialization.jsonObject(with: Data(login.body.utf8)) as? [String: Any])?["token"] as? String, "\(login.body)")
        }
        let expired = try token("root", "root")
        sleep(3)

        let secret = GatewayTests.base64("secret/x")
        let calls: [Call] = [
            Self.guarded("/v3/kv/range", #"{"key":"\#(secret)"}"#),
            Self.guarded("/v3/kv/put", #"{"key":"\#(secret)","value":"eA=="}"#),
            Self.guarded("/v3/kv/deleterange", #"{"key":"\#(secret)"}"#),
            Self.guarded("/v3/kv/txn", #"{"success":[{"request_put":{"key":"\#(secret)","value":"eA=="}}]}"#),
            Self.guarded("/v3/lease/revoke", #"{"ID":"\#(leaseID)"}"#),
            Self.guarded("/v3/cluster/member/add", #"{"peerURLs":["http://127.0.0.1:1"]}"#),
            Self.guarded("/v3/cluster/member/remove", #"{"ID":"1"}"#),
            Self.guarded("/v3/cluster/member/update", #"{"ID":"1","peerURLs":["http://127.0.0.1:1"]}"#),
            Self.guarded("/v3/cluster/member/promote", #"{"ID":"1"}"#),
            Self.guarded("/v3/maintenance/defragment", "{}"),
            Self.guarded("/v3/maintenance/hash", "{}"),
            Self.guarded("/v3/maintenance/snapshot", "{}"),
            Self.guarded("/v3/auth/enable", "{}"),
            Self.guarded("/v3/auth/disable", "{}"),
            Self.guarded("/v3/auth/user/add", #"{"name":"mallory","password":"x"}"#),
            Self.guarded("/v3/auth/user/get", #"{"name":"root"}"#),
            Self.guarded("/v3/auth/user/list", "{}"),
            Self.guarded("/v3/auth/user/delete", #"{"name":"root"}"#),
            Self.guarded("/v3/auth/user/changepw", #"{"name":"root","password":"owned"}"#),
            Self.guarded("/v3/auth/user/grant", #"{"user":"bob","role":"root"}"#),
            Self.guarded("/v3/auth/user/revoke", #"{"name":"root","role":"root"}"#),
            Self.guarded("/v3/auth/role/add", #"{"name":"mallory-r"}"#),
            Self.guarded("/v3/auth/role/get", #"{"role":"root"}"#),
            Self.guarded("/v3/auth/role/list", "{}"),
            Self.guarded("/v3/auth/role/delete", #"{"role":"bob-r"}"#),
            Self.guarded("/v3/auth/role/grant", #"{"name":"bob-r","perm":{"permType":"READWRITE","key":"AA==","range_end":"AA=="}}"#),
            Self.guarded("/v3/auth/role/revoke", #"{"role":"bob-r","key":"\#(GatewayTests.base64("bob/"))"}"#),
            Self.tokenChecked("/v3/kv/compaction", #"{"revision":"1"}"#),
            Self.tokenChecked("/v3/lease/grant", #"{"TTL":"60"}"#),
            Self.tokenChecked("/v3/maintenance/alarm", #"{"action":"GET"}"#),
            Self.open("/v3/lease/leases", "{}"),
            Self.open("/v3/lease/timetolive", #"{"ID":"\#(leaseID)"}"#),
            Self.open("/v3/cluster/member/list", "{}"),
            Self.open("/v3/maintenance/status", "{}"),
        ]
        var mismatches: [String] = []
        var refusedUnpermitted = 0, refusedNone = 0, refusedExpired = 0
        for call in calls {
            for (credential, expected) in [("none", call.none), ("expired", call.expired), ("unpermitted", call.unpermitted)] {
                let headers: [String]
                switch credential {
                case "expired": headers = ["Authorization: \(expired)"]
                case "unpermitted": headers = ["Authorization: \(try token("bob", "bob"))"]
                default: headers = []
                }
                let reply = try GatewayTests.post(cluster, 0, call.path, call.body, seconds: 5, headers: headers)
                let got: Outcome
                if case .refused(let text) = expected, reply.body.contains(text) && reply.code != 200 {
                    got = expected
                } else if let text = Self.refusalTexts.first(where: reply.body.contains) {
                    got = .refused(text)
                } else {
                    got = .served
                }
                if got != expected { mismatches.append("\(call.path) \(credential): expected \(expected), got \(reply.code) \(reply.body)") }
                if case .refused = expected {
                    switch credential {
                    case "none": refusedNone += 1
                    case "expired": refusedExpired += 1
                    default: refusedUnpermitted += 1
                    }
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches.joined(separator: "\n"))")

        // Nothing any of it tried took: the secret key, the users, the roles.
        #expect(try cluster.run(etcdctl: root + ["get", "secret/x", "--print-value-only"]).stdout == "1\n")
        #expect(try cluster.run(etcdctl: root + ["user", "list"]).stdout == "bob\nroot\n")
        let roles = try cluster.run(etcdctl: root + ["role", "list"]).stdout
        #expect(roles == "bob-r\n", "\(roles)")
        #expect(try cluster.run(etcdctl: root + ["user", "get", "bob"]).stdout.contains("Roles: bob-r"))

        // A watch on a forbidden range is refused and sees nothing written there.
        let bob = try token("bob", "bob")
        let writer = Thread {
            sleep(1)
            _ = try? cluster.run(etcdctl: root + ["put", "secret/watched", "1"])
        }
        writer.start()
        let watch = try GatewayTests.post(cluster, 0, "/v3/watch", #"{"create_request":{"key":"\#(GatewayTests.base64("secret/"))","range_end":"\#(GatewayTests.base64("secret0"))"}}"#,
                                          seconds: 3, headers: ["Authorization: \(bob)"])
        #expect(watch.body.contains(#""canceled":true"#) && watch.body.contains("permission denied"), "\(watch.body)")
        #expect(!watch.body.contains("events") && !watch.body.contains(GatewayTests.base64("secret/watched")), "\(watch.body)")
        // The same refusal over gRPC itself (etcdctl, the client port's own unary path).
        let put = try cluster.run(etcdctl: ["--user", "bob:bob", "put", "secret/x", "2"], endpoints: cluster.endpoint(0))
        #expect(put.stderr.contains("etcdserver: permission denied"), "\(put.stderr)")
        let login = try cluster.run(etcdctl: ["--user", "mallory:guess", "get", "bob/a"], endpoints: cluster.endpoint(0))
        #expect(login.stderr.contains("authentication failed"), "\(login.stderr)")

        // etcd's Lock service acts as its caller: root takes a lock, bob
        // may not (the lock's keys are not his), nobody without a token.
        let lockName = GatewayTests.base64("locks/a")
        let rootLock = try GatewayTests.post(cluster, 0, "/v3/lock/lock", #"{"name":"\#(lockName)"}"#, headers: ["Authorization: \(try token("root", "root"))"])
        #expect(rootLock.code == 200 && rootLock.body.contains(#""key""#), "\(rootLock.body)")
        let bobLock = try GatewayTests.post(cluster, 0, "/v3/lock/lock", #"{"name":"\#(lockName)"}"#, seconds: 5, headers: ["Authorization: \(try token("bob", "bob"))"])
        #expect(bobLock.body.contains("permission denied"), "\(bobLock.body)")
        let nobodyLock = try GatewayTests.post(cluster, 0, "/v3/lock/lock", #"{"name":"\#(lockName)"}"#, seconds: 5)
        #expect(nobodyLock.body.contains("user name is empty"), "\(nobodyLock.body)")

        // The audit: each refusal logged with user and client address, and counted.
        let log = (try? String(contentsOfFile: cluster.members[0].log, encoding: .utf8)) ?? ""
        let lines = log.split(separator: "\n").filter { $0.contains("auth: refused a call") }
        #expect(lines.contains { $0.contains("reason=permission_denied") && $0.contains("user=bob") && $0.contains("remote=gateway ipv4:127.0.0.1:") },
                "\(lines.prefix(5))")
        #expect(lines.contains { $0.contains("reason=permission_denied") && $0.contains("user=bob") && $0.contains("method=etcdserverpb.KV/Put")
                && $0.contains("remote=ipv4:127.0.0.1:") }, "\(lines.suffix(5))")
        #expect(lines.contains { $0.contains("reason=permission_denied") && $0.contains("method=etcdserverpb.Watch/Watch") && $0.contains("remote=gateway") }, "\(lines.suffix(5))")
        #expect(lines.contains { $0.contains("reason=authentication_failed") && $0.contains("user=mallory") }, "\(lines.suffix(5))")
        #expect(lines.contains { $0.contains("reason=invalid_token") && $0.contains("remote=gateway") }, "\(lines.suffix(5))")
        #expect(!log.contains(expired), "a token is never logged")
        let metrics = try cluster.http(0, "/metrics").stdout
        func count(_ reason: String) -> Int {
            metrics.split(separator: "\n").first { $0.hasPrefix("ballot_auth_refusals_total{reason=\"\(reason)\"}") }
                .flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0
        }
        #expect(count("permission_denied") >= refusedUnpermitted + 2, "\(refusedUnpermitted) \(metrics)")
        #expect(count("user_empty") >= refusedNone)
        #expect(count("invalid_token") >= refusedExpired)
        #expect(count("authentication_failed") >= 1)
    }
}
