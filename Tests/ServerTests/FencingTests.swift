import Foundation
import Glibc
import Testing

/// A lock is safe only with fencing (Jepsen, etcd 3.4.3): a holder that
/// pauses past its lease loses the lock, another takes it, and the first
/// must not write when it resumes. Etcd's Lock service, as Ballot serves
/// it, gives every holder a fencing token (its lock key's create revision,
/// rising with every grant); a protected write is a Txn that compares it,
/// so a stale holder's write is refused. Holder A's liveness is a real
/// `etcdctl lease keep-alive` process, frozen with SIGSTOP.
@Suite(.serialized) struct FencingTests {
    static let ttlSeconds = 3

    static func json(_ body: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]) ?? [:]
    }

    /// A lease of `ttl` seconds, its ID as decimal and as hex.
    static func grant(_ cluster: TestCluster, ttl: Int = ttlSeconds) throws -> (decimal: String, hex: String) {
        let reply = try GatewayTests.post(cluster, 0, "/v3/lease/grant", #"{"TTL":"\#(ttl)"}"#)
        let id = try #require(Self.json(reply.body)["ID"] as? String, "\(reply.body)")
        return (id, String(try #require(UInt64(id)), radix: 16))
    }

    /// Why a lock call gave no key and token: the replies, for the failure message.
    struct LockFailed: Error, CustomStringConvertible {
        let description: String
    }

    /// Lock `name` with `lease`: the key held and its create revision (the fencing token).
    static func lock(_ cluster: TestCluster, _ name: String, lease: String, seconds: Int) throws -> (key: String, token: Int64) {
        let reply = try GatewayTests.post(cluster, 0, "/v3/lock/lock", #"{"name":"\#(GatewayTests.base64(name))","lease":"\#(lease)"}"#, seconds: seconds)
        guard reply.code == 200, let key = Self.json(reply.body)["key"] as? String else {
            throw LockFailed(description: "lock answered \(reply)")
        }
        let range = try GatewayTests.post(cluster, 0, "/v3/kv/range", #"{"key":"\#(key)"}"#)
        let kvs = Self.json(range.body)["kvs"] as? [[String: Any]] ?? []
        guard let token = (kvs.first?["create_revision"] as? String).flatMap({ Int64($0) }) else {
            throw LockFailed(description: "the lock key's range answered \(range)")
        }
        return (key, token)
    }

    /// The protected write: put `value` only while `key` still has the
    /// create revision `token`, i.e. while its holder still holds the lock.
    static func guardedPut(_ cluster: TestCluster, key: String, token: Int64, value: String) throws -> Bool {
        let body = #"{"compare":[{"target":"CREATE","key":"\#(key)","create_revision":"\#(token)"}],"success":[{"request_put":{"key":"\#(GatewayTests.base64("resource"))","value":"\#(GatewayTests.base64(value))"}}]}"#
        let reply = try GatewayTests.post(cluster, 0, "/v3/kv/txn", body)
        return Self.json(reply.body)["succeeded"] as? Bool ?? false
    }

    static func resource(_ cluster: TestCluster) throws -> String {
        try cluster.etcdctl("get", "resource", "--print-value-only").stdout.trimmingCharacters(in: .newlines)
    }

    @Test func aPausedHoldersGuardedWriteIsRefusedAndAnUnguardedOneIsNot() throws {
        let cluster = try TestCluster()
        defer { cluster.cleanUp() }
        let leaseA = try Self.grant(cluster)
        let keepAlive = Process()
        keepAlive.executableURL = URL(fileURLWithPath: "/usr/bin/etcdctl")
        keepAlive.arguments = ["--endpoints=\(cluster.endpoints)", "lease", "keep-alive", leaseA.hex]
        keepAlive.environment = ["ETCDCTL_API": "3"]
        keepAlive.standardOutput = FileHandle.nullDevice
        keepAlive.standardError = FileHandle.nullDevice
        try keepAlive.run()
        defer {
            Glibc.kill(keepAlive.processIdentifier, SIGCONT)
            keepAlive.terminate()
            keepAlive.waitUntilExit()
        }
        let a = try Self.lock(cluster, "res-lock", lease: leaseA.decimal, seconds: 10)
        #expect(try Self.guardedPut(cluster, key: a.key, token: a.token, value: "from A"))

        // B asks while A holds it, and waits; with A's lease kept alive, twice its TTL passes and B still waits.
        // B's lease must outlive the whole wait: it is granted long enough rather than kept alive by
        // `etcdctl` calls, which a loaded machine (CI runs suites in parallel) can delay past a short TTL.
        let leaseB = try Self.grant(cluster, ttl: 20 * Self.ttlSeconds)
        let bResult = LockedBox<Result<(key: String, token: Int64), any Error>?>(nil)
        let bDone = DispatchSemaphore(value: 0)
        let asking = Thread {
            bResult.set(Result { try Self.lock(cluster, "res-lock", lease: leaseB.decimal, seconds: 40) })
            bDone.signal()
        }
        asking.start()
        #expect(bDone.wait(timeout: .now() + .seconds(2 * Self.ttlSeconds)) == .timedOut, "nobody else acquires a lock kept alive")

        // A pauses past its TTL: its lease expires, its key goes, B holds the lock.
        Glibc.kill(keepAlive.processIdentifier, SIGSTOP)
        #expect(bDone.wait(timeout: .now() + .seconds(6 * Self.ttlSeconds)) == .success, "B acquires once A's lease expired")
        let b = try #require(bResult.get(), "B's lock call returned").get()
        #expect(b.token > a.token, "fencing tokens rise with every grant")
        #expect(try Self.guardedPut(cluster, key: b.key, token: b.token, value: "from B"))
        #expect(try Self.resource(cluster) == "from B")

        // A resumes. Its guarded write is refused: the resource keeps B's value.
        Glibc.kill(keepAlive.processIdentifier, SIGCONT)
        #expect(try !Self.guardedPut(cluster, key: a.key, token: a.token, value: "stale A"))
        #expect(try Self.resource(cluster) == "from B")
        // The unguarded pattern is what goes wrong: A's plain put lands over B's.
        try cluster.etcdctl("put", "resource", "stale A")
        #expect(try Self.resource(cluster) == "stale A", "without the guard, the stale holder overwrites")
    }
}

/// A value handed between threads.
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }
    func set(_ new: Value) { lock.withLock { value = new } }
    func get() -> Value { lock.withLock { value } }
}
