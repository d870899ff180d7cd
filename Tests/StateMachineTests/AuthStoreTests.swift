import Consensus
import EtcdAPI
import Foundation
import StateMachine
import Storage
import Testing

/// etcd's auth store as every member applies it: the root rules, the
/// revision, admin checks, permission checks, tokens, and the same state
/// read back from the store's file.
@Suite struct AuthStoreTests {
    final class Fixture {
        let directory: String
        let store: MVCCStore
        let auth = AuthStore()
        var index: UInt64 = 0
        var tokens: [AuthStore.TokenEffect] = []

        init() throws {
            directory = NSTemporaryDirectory() + "ballot-auth-" + UUID().uuidString
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            store = try MVCCStore(directory: directory)
        }

        deinit { try? FileManager.default.removeItem(atPath: directory) }

        @discardableResult
        func apply(_ caller: AuthStore.Caller = .nobody, _ fill: (inout Ballotpb_AuthCommand) -> Void) throws -> Result<[UInt8], AuthFailure> {
            var command = Ballotpb_AuthCommand()
            fill(&command)
            index += 1
            return try auth.apply(command, caller: caller, index: LogIndex(index), store: store) { self.tokens.append(contentsOf: $0) }
        }

        func caller(_ name: String) -> AuthStore.Caller { AuthStore.Caller(username: name, revision: auth.revision) }

        func addUser(_ name: String, as caller: AuthStore.Caller = .nobody) throws {
            try apply(caller) { $0.userAdd.name = name; $0.hashedPassword = "hash-of-\(name)" }.get()
        }
    }

    static func failure(_ result: Result<[UInt8], AuthFailure>) -> AuthFailure? {
        if case .failure(let failure) = result { return failure }
        return nil
    }

    @Test func enablingNeedsARootUserWithTheRootRole() throws {
        let f = try Fixture()
        #expect(Self.failure(try f.apply { $0.enable = .init() }) == .rootUserNotExist)
        try f.addUser("root")
        #expect(Self.failure(try f.apply { $0.enable = .init() }) == .rootRoleNotExist)
        // Granting "root" needs no role object.
        try f.apply { $0.userGrantRole.user = "root"; $0.userGrantRole.role = "root" }.get()
        let before = f.auth.revision
        try f.apply { $0.enable = .init() }.get()
        #expect(f.auth.enabled && f.auth.isEnabled)
        #expect(f.auth.revision == before, "enabling does not move the revision")
        // Now the root user and role are protected.
        #expect(Self.failure(try f.apply(f.caller("root")) { $0.userDelete.name = "root" }) == .invalidAuthManagement)
        #expect(Self.failure(try f.apply(f.caller("root")) { $0.userRevokeRole.name = "root"; $0.userRevokeRole.role = "root" }) == .invalidAuthManagement)
        #expect(Self.failure(try f.apply(f.caller("root")) { $0.roleDelete.role = "root" }) == .invalidAuthManagement)
    }

    @Test func adminCallsNeedRootAndPermissionsDecideKeys() throws {
        let f = try Fixture()
        try f.addUser("root")
        try f.apply { $0.userGrantRole.user = "root"; $0.userGrantRole.role = "root" }.get()
        try f.addUser("alice")
        try f.apply { $0.roleAdd.name = "rw-foo" }.get()
        try f.apply {
            $0.roleGrantPermission.name = "rw-foo"
            $0.roleGrantPermission.perm.permType = .readwrite
            $0.roleGrantPermission.perm.key = Data("foo".utf8)
        }.get()
        try f.apply { $0.userGrantRole.user = "alice"; $0.userGrantRole.role = "rw-foo" }.get()
        try f.apply { $0.enable = .init() }.get()

        let alice = f.caller("alice"), root = f.caller("root")
        #expect(f.auth.check(alice, key: Array("foo".utf8), rangeEnd: [], writing: true) == nil)
        #expect(f.auth.check(alice, key: Array("bar".utf8), rangeEnd: [], writing: true) == .permissionDenied)
        #expect(f.auth.check(root, key: Array("bar".utf8), rangeEnd: [0], writing: true) == nil)
        #expect(f.auth.check(.nobody, key: Array("foo".utf8), rangeEnd: [], writing: false) == .userEmpty)
        #expect(f.auth.check(AuthStore.Caller(username: "ghost", revision: f.auth.revision), key: Array("foo".utf8), rangeEnd: [], writing: false) == .permissionDenied)

        // Admin calls: refused to alice, allowed to root; alice may read herself.
        #expect(Self.failure(try f.apply(alice) { $0.userList = .init() }) == .permissionDenied)
        #expect(Self.failure(try f.apply(.nobody) { $0.userList = .init() }) == .userEmpty)
        let list = try Etcdserverpb_AuthUserListResponse(serializedBytes: try f.apply(root) { $0.userList = .init() }.get())
        #expect(list.users == ["alice", "root"])
        let me = try Etcdserverpb_AuthUserGetResponse(serializedBytes: try f.apply(alice) { $0.userGet.name = "alice" }.get())
        #expect(me.roles == ["rw-foo"])
        #expect(Self.failure(try f.apply(alice) { $0.userGet.name = "root" }) == .permissionDenied)

        // A change moves the revision: credentials checked before it are old.
        let stale = f.caller("alice")
        try f.apply(root) { $0.roleAdd.name = "other" }.get()
        #expect(f.auth.check(stale, key: Array("foo".utf8), rangeEnd: [], writing: true) == .authOldRevision)

        // Deleting the role takes it from alice: foo is hers no more.
        try f.apply(root) { $0.roleDelete.role = "rw-foo" }.get()
        #expect(f.auth.check(f.caller("alice"), key: Array("foo".utf8), rangeEnd: [], writing: true) == .permissionDenied)
        let after = try Etcdserverpb_AuthUserGetResponse(serializedBytes: try f.apply(root) { $0.userGet.name = "alice" }.get())
        #expect(after.roles.isEmpty)
    }

    @Test func tokensAreAssignedAtTheEntrysIndexAndForgotten() throws {
        let f = try Fixture()
        try f.addUser("root")
        try f.apply { $0.userGrantRole.user = "root"; $0.userGrantRole.role = "root" }.get()
        #expect(Self.failure(try f.apply { $0.authenticate.name = "root"; $0.simpleTokenPrefix = "abc" }) == .authNotEnabled)
        try f.apply { $0.enable = .init() }.get()
        f.tokens = []
        let response = try Etcdserverpb_AuthenticateResponse(
            serializedBytes: try f.apply { $0.authenticate.name = "root"; $0.simpleTokenPrefix = "abc" }.get())
        #expect(response.token == "abc.\(f.index)")
        #expect(f.tokens == [.assign(token: response.token, username: "root")])
        #expect(Self.failure(try f.apply { $0.authenticate.name = "nobody"; $0.simpleTokenPrefix = "abc" }) == .authFailed)
        f.tokens = []
        try f.apply(f.caller("root")) { $0.disable = .init() }.get()
        #expect(f.tokens == [.forgetAll])
        #expect(!f.auth.enabled)
    }

    /// Every member that opens the store's file finds the same auth store.
    @Test func theStateReadBackFromTheStoreIsTheSame() throws {
        let f = try Fixture()
        try f.addUser("root")
        try f.apply { $0.userGrantRole.user = "root"; $0.userGrantRole.role = "root" }.get()
        try f.apply { $0.roleAdd.name = "r" }.get()
        try f.apply {
            $0.roleGrantPermission.name = "r"
            $0.roleGrantPermission.perm.permType = .read
            $0.roleGrantPermission.perm.key = Data("k".utf8)
            $0.roleGrantPermission.perm.rangeEnd = Data("m".utf8)
        }.get()
        try f.addUser("bob")
        try f.apply { $0.userGrantRole.user = "bob"; $0.userGrantRole.role = "r" }.get()
        try f.apply { $0.enable = .init() }.get()
        #expect(f.store.appliedIndex == LogIndex(f.index), "each command records its index with its change")

        let reloaded = AuthStore()
        try reloaded.load(from: f.store)
        #expect(reloaded.enabled && reloaded.revision == f.auth.revision)
        let bob = AuthStore.Caller(username: "bob", revision: reloaded.revision)
        #expect(reloaded.check(bob, key: Array("l".utf8), rangeEnd: [], writing: false) == nil)
        #expect(reloaded.check(bob, key: Array("l".utf8), rangeEnd: [], writing: true) == .permissionDenied)
        #expect(reloaded.check(bob, key: Array("k".utf8), rangeEnd: Array("m".utf8), writing: false) == nil)
        #expect(reloaded.hasRootRole("root") && !reloaded.hasRootRole("bob"))
    }
}
