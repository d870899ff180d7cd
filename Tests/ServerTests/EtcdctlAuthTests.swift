import Foundation
import Testing

/// etcd's auth with Debian's etcdctl and curl against a real 3-member
/// Ballot cluster: users, roles, key permissions, tokens issued by one
/// member and honoured by the others, all of it kept across a restart.
@Suite(.serialized) struct EtcdctlAuthTests {
    /// etcdctl's own setup, as etcd's e2e tests do it: a root user with the root role, then enable.
    static func enableAuth(_ cluster: TestCluster) throws {
        #expect(try cluster.etcdctl("user", "add", "root", "--interactive=false", input: "root\n").stdout == "User root created\n")
        #expect(try cluster.etcdctl("user", "grant-role", "root", "root").stdout == "Role root is granted to user root\n")
        #expect(try cluster.etcdctl("auth", "enable").stdout == "Authentication Enabled\n")
    }

    @Test func usersRolesAndPermissionsAcrossMembersAndRestarts() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        try Self.enableAuth(cluster)
        #expect(try cluster.etcdctl("put", "foo", "anonymous").stderr.contains("etcdserver: user name is empty"))
        #expect(try cluster.etcdctl("--user", "root:wrong", "put", "foo", "x").stderr.contains("authentication failed, invalid user ID or password"))

        let root = ["--user", "root:root"]
        func ctl(_ user: [String], _ arguments: String..., member: Int? = nil, input: String? = nil) throws -> TestCluster.Output {
            try cluster.run(etcdctl: user + arguments, endpoints: member.map { cluster.endpoint($0) }, input: input)
        }
        #expect(try ctl(root, "role", "add", "foo-rw").stdout == "Role foo-rw created\n")
        #expect(try ctl(root, "role", "grant-permission", "foo-rw", "readwrite", "foo").stdout == "Role foo-rw updated\n")
        #expect(try ctl(root, "role", "grant-permission", "foo-rw", "read", "--prefix", "pub/").stdout == "Role foo-rw updated\n")
        #expect(try ctl(root, "user", "add", "alice", "--interactive=false", input: "secret\n").stdout == "User alice created\n")
        #expect(try ctl(root, "user", "grant-role", "alice", "foo-rw").stdout == "Role foo-rw is granted to user alice\n")
        #expect(try ctl(root, "put", "pub/a", "1").stdout == "OK\n")

        // Each member judges alice the same way, whichever one issued her token.
        let alice = ["--user", "alice:secret"]
        for member in 0..<3 {
            #expect(try ctl(alice, "put", "foo", "v\(member)", member: member).stdout == "OK\n")
            #expect(try ctl(alice, "get", "foo", "--consistency=s", member: member).stdout.hasPrefix("foo\n"))
            #expect(try ctl(alice, "put", "bar", "x", member: member).stderr.contains("etcdserver: permission denied"))
        }
        #expect(try ctl(alice, "get", "pub/", "--prefix").stdout == "pub/a\n1\n")
        #expect(try ctl(alice, "put", "pub/b", "2").stderr.contains("permission denied"), "read only")
        #expect(try ctl(alice, "get", "", "--from-key").stderr.contains("permission denied"), "more than her keys")
        #expect(try ctl(alice, "user", "list").stderr.contains("permission denied"))
        #expect(try ctl(alice, "user", "get", "alice").stdout == "User: alice\nRoles: foo-rw\n")
        // A transaction is judged whole: a compare on a key she may not read fails it.
        let txn = try ctl(alice, "txn", input: "value(\"bar\") = \"x\"\n\nput foo y\n\n\n")
        #expect(txn.stderr.contains("permission denied"), "\(txn.stdout)")
        // A maintenance call needs root; etcd answers it with the auth store's own words.
        #expect(try ctl(alice, "defrag").stderr.contains("auth: permission denied"))
        // A lease's keys are told only to who may read them all (etcd 3.4.26).
        let grant = try ctl(root, "lease", "grant", "600").stdout
        let lease = try #require(grant.split(separator: " ").dropFirst().first.map(String.init), "\(grant)")
        #expect(try ctl(root, "put", "bar", "leased", "--lease", lease).stdout == "OK\n")
        #expect(try ctl(alice, "lease", "timetolive", lease, "--keys").stderr.contains("permission denied"))
        #expect(try ctl(root, "lease", "timetolive", lease, "--keys").stdout.contains("bar"))

        // Taking the permission back takes effect at once, everywhere.
        #expect(try ctl(root, "role", "revoke-permission", "foo-rw", "foo").stdout == "Permission of key foo is revoked from role foo-rw\n")
        #expect(try ctl(alice, "put", "foo", "again", member: 2).stderr.contains("permission denied"))
        #expect(try ctl(root, "role", "delete", "root").stderr.contains("etcdserver: invalid auth management"))
        // A made-up simple token is refused at once, not waited for: its
        // index is far past any this cluster has (the request timeout is 7 s).
        let madeUp = try GatewayTests.post(cluster, 1, "/v3/kv/put", #"{"key":"Zm9v","value":"YmFy"}"#, seconds: 3,
                                           headers: ["Authorization: abcdefghijklmnop.999999999"])
        #expect(madeUp.body.contains("etcdserver: invalid auth token"), "\(madeUp.code) \(madeUp.body)")

        // Users, roles and the enabled flag are in the store's file: a
        // restart of every member keeps them.
        cluster.stop()
        for i in 0..<3 { try cluster.start(i) }
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, try ctl(root, "put", "after", "restart").stdout != "OK\n" { usleep(200_000) }
        #expect(try ctl(root, "get", "after").stdout == "after\nrestart\n")
        #expect(try cluster.etcdctl("get", "after").stderr.contains("user name is empty"))
        #expect(try ctl(alice, "get", "pub/a").stdout == "pub/a\n1\n")

        #expect(try ctl(root, "auth", "disable").stdout == "Authentication Disabled\n")
        #expect(try cluster.etcdctl("put", "foo", "anyone").stdout == "OK\n")
    }

    /// Tokens over etcd's JSON gateway: issued by Authenticate, sent in the
    /// `Authorization` header; a made-up one refused; a JWT expires.
    @Test func jwtTokensAreSignedCheckedAndExpire() throws {
        let secret = NSTemporaryDirectory() + "ballot-jwt-" + UUID().uuidString
        try Data("a shared HMAC secret for the test".utf8).write(to: URL(fileURLWithPath: secret))
        defer { try? FileManager.default.removeItem(atPath: secret) }
        let cluster = try TestCluster(extraArguments: ["--auth-token", "jwt,priv-key=\(secret),sign-method=HS256,ttl=2s"])
        defer { cluster.cleanUp() }
        try Self.enableAuth(cluster)

        // A login is not judged by a token it carries (an expired one would refuse every new login).
        let login = try GatewayTests.post(cluster, 0, "/v3/auth/authenticate", #"{"name":"root","password":"root"}"#,
                                          headers: ["Authorization: an.expired.token"])
        let token = try #require((try? JSONSerialization.jsonObject(with: Data(login.body.utf8)) as? [String: Any])?["token"] as? String)
        #expect(token.split(separator: ".").count == 3, "a JWT: header, claims, signature")
        // Signed by member 1, honoured by member 3.
        let put = try GatewayTests.post(cluster, 2, "/v3/kv/put", #"{"key":"Zm9v","value":"YmFy"}"#, headers: ["Authorization: \(token)"])
        #expect(put.code == 200 && put.body.contains("revision"), "\(put.body)")
        let forged = try GatewayTests.post(cluster, 2, "/v3/kv/put", #"{"key":"Zm9v","value":"YmFy"}"#,
                                           headers: ["Authorization: \(token.dropLast(2))xx"])
        #expect(forged.body.contains("etcdserver: invalid auth token"), "\(forged.body)")
        let anonymous = try GatewayTests.post(cluster, 1, "/v3/kv/put", #"{"key":"Zm9v","value":"YmFy"}"#)
        #expect(anonymous.body.contains("etcdserver: user name is empty"), "\(anonymous.body)")
        // A change to the auth store makes every JWT issued before it old.
        #expect(try cluster.run(etcdctl: ["--user", "root:root", "role", "add", "r"]).stdout == "Role r created\n")
        let stale = try GatewayTests.post(cluster, 0, "/v3/kv/put", #"{"key":"Zm9v","value":"YmFy"}"#, headers: ["Authorization: \(token)"])
        #expect(stale.body.contains("etcdserver: revision of auth store is old"), "\(stale.body)")
        let fresh = try GatewayTests.post(cluster, 0, "/v3/auth/authenticate", #"{"name":"root","password":"root"}"#)
        let second = try #require((try? JSONSerialization.jsonObject(with: Data(fresh.body.utf8)) as? [String: Any])?["token"] as? String)
        sleep(3)
        let expired = try GatewayTests.post(cluster, 0, "/v3/kv/put", #"{"key":"Zm9v","value":"YmFy"}"#, headers: ["Authorization: \(second)"])
        #expect(expired.body.contains("etcdserver: invalid auth token"), "after its ttl: \(expired.body)")
    }
}
