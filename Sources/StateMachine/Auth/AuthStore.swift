import Consensus
import EtcdAPI
import Foundation
import Storage
import SwiftProtobuf
import Synchronization

/// etcd's auth store: whether auth is enabled, its revision, users (with
/// bcrypt hashes of their passwords) and roles (with key permissions).
/// Changed only by applying log entries, identically on every member, and
/// kept in the MVCC store's file (`MVCCStore.writeAuth`) beside the data,
/// so restarts and snapshots carry it; this is its in-memory form.
///
/// One owner writes it (the applier); readers (permission checks of local
/// reads, token checks) use it beside that owner only as the store is used,
/// under the server's store lock.
public final class AuthStore: @unchecked Sendable {
    public private(set) var enabled = false {
        didSet { enabledFlag.store(enabled, ordering: .releasing) }
    }
    private let enabledFlag = Atomic<Bool>(false)
    /// `enabled`, readable from any thread without the store's lock: for
    /// the fast paths that skip credentials while auth is off (a request
    /// racing an enable is judged again where it applies).
    public var isEnabled: Bool { enabledFlag.load(ordering: .acquiring) }
    /// etcd's auth revision: starts at 1, moves on every change of users,
    /// roles or permissions, and on disable.
    public private(set) var revision: UInt64 = 1 {
        didSet { revisionFlag.store(revision, ordering: .releasing) }
    }
    private let revisionFlag = Atomic<UInt64>(1)
    /// `revision`, readable from any thread without the store's lock: what a
    /// simple token or certificate is credited with when a request arrives
    /// (every member judges the request again where it applies it).
    public var currentRevision: UInt64 { revisionFlag.load(ordering: .acquiring) }
    private(set) var users: [String: Authpb_User] = [:]
    private(set) var roles: [String: Authpb_Role] = [:]
    /// Each user's permissions, merged over its roles; rebuilt on change.
    private var permissions: [String: KeyPermissions] = [:]

    public static let rootName = "root"

    public init() {}

    // MARK: Records in the store

    static let enabledName = Array("enabled".utf8)
    static let revisionName = Array("revision".utf8)
    static let userPrefix = Array("user/".utf8)
    static let rolePrefix = Array("role/".utf8)

    /// Read the auth store from `store` (at open, and after a snapshot replaced the store).
    public func load(from store: MVCCStore) throws(StorageError) {
        enabled = false
        revision = 1
        users = [:]
        roles = [:]
        if let bad = take(try store.authRecords().map { ($0.name, $0.record) }) {
            throw .corrupt(path: store.directory, detail: "undecodable auth record \(String(decoding: bad, as: UTF8.self))")
        }
    }

    /// Records written (nil: removed) into the in-memory form, the
    /// permissions rebuilt; the name of the first record that does not
    /// decode, if one does not.
    private func take(_ changes: [(name: [UInt8], record: [UInt8]?)]) -> [UInt8]? {
        defer { rebuildPermissions() }
        for (name, record) in changes {
            if name == Self.enabledName {
                enabled = record == [1]
            } else if name == Self.revisionName {
                guard let record, record.count == 8 else { return name }
                revision = UInt64(bitPattern: record.reduce(Int64(0)) { $0 << 8 | Int64($1) })
            } else if name.starts(with: Self.userPrefix) {
                let key = String(decoding: name.dropFirst(Self.userPrefix.count), as: UTF8.self)
                guard let record else { users[key] = nil; continue }
                guard let user = try? Authpb_User(serializedBytes: record) else { return name }
                users[key] = user
            } else if name.starts(with: Self.rolePrefix) {
                let key = String(decoding: name.dropFirst(Self.rolePrefix.count), as: UTF8.self)
                guard let record else { roles[key] = nil; continue }
                guard let role = try? Authpb_Role(serializedBytes: record) else { return name }
                roles[key] = role
            } else {
                return name
            }
        }
        return nil
    }

    private func rebuildPermissions() {
        permissions = users.mapValues { user in KeyPermissions(roles: user.roles.compactMap { roles[$0] }) }
    }

    static func revisionRecord(_ revision: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: revision >> (56 - 8 * $0)) }
    }

    // MARK: Decisions

    /// Who a request comes from: etcd's AuthInfo (the user, and the auth
    /// revision its credentials were checked at; 0 for nobody).
    public struct Caller: Sendable, Equatable {
        public var username: String
        public var revision: UInt64

        public init(username: String, revision: UInt64) {
            self.username = username
            self.revision = revision
        }

        public static let nobody = Caller(username: "", revision: 0)
    }

    public func hasRootRole(_ username: String) -> Bool {
        users[username]?.roles.contains(Self.rootName) ?? false
    }

    /// etcd's isOpPermitted: nil when `caller` may read (or write) the keys.
    public func check(_ caller: Caller, key: [UInt8], rangeEnd: [UInt8], writing: Bool) -> AuthFailure? {
        guard enabled else { return nil }
        if caller.revision == 0 { return .userEmpty }
        if caller.revision < revision { return .authOldRevision }
        guard users[caller.username] != nil else { return .permissionDenied }
        if hasRootRole(caller.username) { return nil }
        return permissions[caller.username]?.permits(key: key, rangeEnd: rangeEnd, writing: writing) == true ? nil : .permissionDenied
    }

    /// etcd's IsAdminPermitted: nil when `caller` holds the root role (or auth is off).
    public func checkAdmin(_ caller: Caller) -> AuthFailure? {
        guard enabled else { return nil }
        if caller.username.isEmpty { return .userEmpty }
        guard users[caller.username] != nil else { return .userNotFound }
        return hasRootRole(caller.username) ? nil : .permissionDenied
    }

    /// The user a password is checked against (by the member the client
    /// asked, before anything is proposed), and the auth revision then.
    public func passwordHash(of name: String) -> Result<(hash: String, revision: UInt64), AuthFailure> {
        guard enabled else { return .failure(.authNotEnabled) }
        guard let user = users[name] else { return .failure(.authFailed) }
        if user.options.noPassword { return .failure(.noPasswordUser) }
        return .success((String(decoding: user.password, as: UTF8.self), revision))
    }

    /// The names of every user, for the simple tokens of a user deleted.
    public func userExists(_ name: String) -> Bool { users[name] != nil }

    // MARK: Applying

    /// What an applied auth command did beyond the store: tokens to create
    /// or forget (the server's token table; nothing in the simulator).
    public enum TokenEffect: Sendable, Equatable {
        case assign(token: String, username: String)
        case forgetUser(String)
        case forgetAll
    }

    /// Apply `command`, asked by `caller`, as log entry `index`: its encoded
    /// response, or etcd's refusal. Changes reach the store with `index`
    /// applied in the same transaction; a refusal changes nothing.
    /// `publish` gets the command's token effects before the new state is
    /// published (a forgotten token must be gone before the revision moves).
    public func apply(
        _ command: Ballotpb_AuthCommand, caller: Caller, index: LogIndex, store: MVCCStore,
        publish: ([TokenEffect]) -> Void = { _ in }
    ) throws(StorageError) -> Result<[UInt8], AuthFailure> {
        var tokens: [TokenEffect] = []
        let outcome: Change
        switch command.request {
        case .enable: outcome = enable(caller)
        case .disable:
            outcome = admin(caller) { () -> Change in
                guard enabled else { return .success((Etcdserverpb_AuthDisableResponse(), [])) }
                tokens.append(.forgetAll)
                return .success((Etcdserverpb_AuthDisableResponse(), [(Self.enabledName, [0])] + bump()))
            }
        case .authenticate(let request):
            outcome = authenticate(request, prefix: command.simpleTokenPrefix, index: index, tokens: &tokens)
        case .userAdd(let request): outcome = admin(caller) { userAdd(request, hash: command.hashedPassword) }
        case .userGet(let request):
            outcome = (caller.username == request.name ? nil : checkAdmin(caller)).map { .failure($0) } ?? userGet(request)
        case .userList: outcome = admin(caller) { userList() }
        case .userDelete(let request): outcome = admin(caller) { userDelete(request, tokens: &tokens) }
        case .userChangePassword(let request):
            outcome = admin(caller) { userChangePassword(request, hash: command.hashedPassword, tokens: &tokens) }
        case .userGrantRole(let request): outcome = admin(caller) { userGrantRole(request) }
        case .userRevokeRole(let request): outcome = admin(caller) { userRevokeRole(request) }
        case .roleAdd(let request): outcome = admin(caller) { roleAdd(request) }
        case .roleGet(let request):
            let holds = users[caller.username]?.roles.contains(request.role) ?? false
            outcome = (holds ? nil : checkAdmin(caller)).map { .failure($0) } ?? roleGet(request)
        case .roleList: outcome = admin(caller) { roleList() }
        case .roleDelete(let request): outcome = admin(caller) { roleDelete(request) }
        case .roleGrantPermission(let request): outcome = admin(caller) { roleGrantPermission(request) }
        case .roleRevokePermission(let request): outcome = admin(caller) { roleRevokePermission(request) }
        case nil: outcome = .failure(.invalidAuthManagement)
        }
        switch outcome {
        case .failure(let failure):
            try store.writeAuth([], index: index)
            return .failure(failure)
        case .success(let (response, changes)):
            try store.writeAuth(changes, index: index)
            if !tokens.isEmpty { publish(tokens) }
            let undecodable = take(changes)
            precondition(undecodable == nil, "an auth record this store encoded does not decode")
            let bytes: [UInt8] = (try? response.serializedBytes()) ?? []
            return .success(bytes)
        }
    }

    private typealias Change = Result<(any SwiftProtobuf.Message, [RecordChange]), AuthFailure>
    private typealias RecordChange = (name: [UInt8], record: [UInt8]?)

    private func admin(_ caller: Caller, _ body: () -> Change) -> Change {
        if let failure = checkAdmin(caller) { return .failure(failure) }
        return body()
    }

    /// The record that moves the auth revision on by one.
    private func bump() -> [(name: [UInt8], record: [UInt8]?)] {
        [(Self.revisionName, Self.revisionRecord(revision + 1))]
    }

    private func userRecord(_ user: Authpb_User) -> (name: [UInt8], record: [UInt8]?) {
        (Self.userPrefix + [UInt8](user.name), (try? user.serializedBytes()) ?? [])
    }

    private func roleRecord(_ role: Authpb_Role) -> (name: [UInt8], record: [UInt8]?) {
        (Self.rolePrefix + [UInt8](role.name), (try? role.serializedBytes()) ?? [])
    }

    private func enable(_ caller: Caller) -> Change {
        if enabled {
            // Enabled already: only root may ask, and nothing changes.
            return checkAdmin(caller).map { .failure($0) } ?? .success((Etcdserverpb_AuthEnableResponse(), []))
        }
        guard let root = users[Self.rootName] else { return .failure(.rootUserNotExist) }
        guard root.roles.contains(Self.rootName) else { return .failure(.rootRoleNotExist) }
        return .success((Etcdserverpb_AuthEnableResponse(), [(Self.enabledName, [1])]))
    }

    private func authenticate(_ request: Etcdserverpb_AuthenticateRequest, prefix: String, index: LogIndex, tokens: inout [TokenEffect]) -> Change {
        guard enabled else { return .failure(.authNotEnabled) }
        guard let user = users[request.name], !user.options.noPassword else { return .failure(.authFailed) }
        var response = Etcdserverpb_AuthenticateResponse()
        response.token = "\(prefix).\(index.rawValue)"
        tokens.append(.assign(token: response.token, username: request.name))
        return .success((response, []))
    }

    private func userAdd(_ request: Etcdserverpb_AuthUserAddRequest, hash: String) -> Change {
        if request.name.isEmpty { return .failure(.userEmpty) }
        if users[request.name] != nil { return .failure(.userAlreadyExist) }
        var user = Authpb_User()
        user.name = Data(request.name.utf8)
        user.password = request.options.noPassword ? Data() : Data(hash.utf8)
        user.options = request.options
        return .success((Etcdserverpb_AuthUserAddResponse(), [userRecord(user)] + bump()))
    }

    private func userGet(_ request: Etcdserverpb_AuthUserGetRequest) -> Change {
        guard let user = users[request.name] else { return .failure(.userNotFound) }
        var response = Etcdserverpb_AuthUserGetResponse()
        response.roles = user.roles
        return .success((response, []))
    }

    private func userList() -> Change {
        var response = Etcdserverpb_AuthUserListResponse()
        response.users = users.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        return .success((response, []))
    }

    private func userDelete(_ request: Etcdserverpb_AuthUserDeleteRequest, tokens: inout [TokenEffect]) -> Change {
        if enabled && request.name == Self.rootName { return .failure(.invalidAuthManagement) }
        guard let user = users[request.name] else { return .failure(.userNotFound) }
        tokens.append(.forgetUser(request.name))
        return .success((Etcdserverpb_AuthUserDeleteResponse(), [(Self.userPrefix + [UInt8](user.name), nil)] + bump()))
    }

    private func userChangePassword(_ request: Etcdserverpb_AuthUserChangePasswordRequest, hash: String, tokens: inout [TokenEffect]) -> Change {
        guard var user = users[request.name] else { return .failure(.userNotFound) }
        if !user.options.noPassword { user.password = Data(hash.utf8) }
        tokens.append(.forgetUser(request.name))
        return .success((Etcdserverpb_AuthUserChangePasswordResponse(), [userRecord(user)] + bump()))
    }

    private func userGrantRole(_ request: Etcdserverpb_AuthUserGrantRoleRequest) -> Change {
        guard var user = users[request.user] else { return .failure(.userNotFound) }
        if request.role != Self.rootName && roles[request.role] == nil { return .failure(.roleNotFound) }
        if user.roles.contains(request.role) { return .success((Etcdserverpb_AuthUserGrantRoleResponse(), [])) }
        user.roles.append(request.role)
        user.roles.sort { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        return .success((Etcdserverpb_AuthUserGrantRoleResponse(), [userRecord(user)] + bump()))
    }

    private func userRevokeRole(_ request: Etcdserverpb_AuthUserRevokeRoleRequest) -> Change {
        if enabled && request.name == Self.rootName && request.role == Self.rootName { return .failure(.invalidAuthManagement) }
        guard var user = users[request.name] else { return .failure(.userNotFound) }
        guard let at = user.roles.firstIndex(of: request.role) else { return .failure(.roleNotGranted) }
        user.roles.remove(at: at)
        return .success((Etcdserverpb_AuthUserRevokeRoleResponse(), [userRecord(user)] + bump()))
    }

    private func roleAdd(_ request: Etcdserverpb_AuthRoleAddRequest) -> Change {
        if request.name.isEmpty { return .failure(.roleEmpty) }
        if roles[request.name] != nil { return .failure(.roleAlreadyExist) }
        var role = Authpb_Role()
        role.name = Data(request.name.utf8)
        return .success((Etcdserverpb_AuthRoleAddResponse(), [roleRecord(role)] + bump()))
    }

    private func roleGet(_ request: Etcdserverpb_AuthRoleGetRequest) -> Change {
        guard let role = roles[request.role] else { return .failure(.roleNotFound) }
        var response = Etcdserverpb_AuthRoleGetResponse()
        response.perm = role.keyPermission
        return .success((response, []))
    }

    private func roleList() -> Change {
        var response = Etcdserverpb_AuthRoleListResponse()
        response.roles = roles.keys.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        return .success((response, []))
    }

    private func roleDelete(_ request: Etcdserverpb_AuthRoleDeleteRequest) -> Change {
        if enabled && request.role == Self.rootName { return .failure(.invalidAuthManagement) }
        guard let role = roles[request.role] else { return .failure(.roleNotFound) }
        var changes: [(name: [UInt8], record: [UInt8]?)] = [(Self.rolePrefix + [UInt8](role.name), nil)]
        for var user in users.values.sorted(by: { [UInt8]($0.name).lexicographicallyPrecedes([UInt8]($1.name)) }) where user.roles.contains(request.role) {
            user.roles.removeAll { $0 == request.role }
            changes.append(userRecord(user))
        }
        return .success((Etcdserverpb_AuthRoleDeleteResponse(), changes + bump()))
    }

    private func roleGrantPermission(_ request: Etcdserverpb_AuthRoleGrantPermissionRequest) -> Change {
        guard var role = roles[request.name] else { return .failure(.roleNotFound) }
        guard request.hasPerm else { return .failure(.permissionNotGiven) }
        let permission = request.perm
        if let at = role.keyPermission.firstIndex(where: { $0.key == permission.key && $0.rangeEnd == permission.rangeEnd }) {
            role.keyPermission[at].permType = permission.permType
        } else {
            role.keyPermission.append(permission)
            // Stable, by key only: etcd sorts by key alone.
            role.keyPermission = role.keyPermission.enumerated().sorted { a, b in
                a.element.key == b.element.key ? a.offset < b.offset : [UInt8](a.element.key).lexicographicallyPrecedes([UInt8](b.element.key))
            }.map(\.element)
        }
        return .success((Etcdserverpb_AuthRoleGrantPermissionResponse(), [roleRecord(role)] + bump()))
    }

    private func roleRevokePermission(_ request: Etcdserverpb_AuthRoleRevokePermissionRequest) -> Change {
        guard var role = roles[request.role] else { return .failure(.roleNotFound) }
        let before = role.keyPermission.count
        role.keyPermission.removeAll { $0.key == request.key && $0.rangeEnd == request.rangeEnd }
        if role.keyPermission.count == before { return .failure(.permissionNotGranted) }
        return .success((Etcdserverpb_AuthRoleRevokePermissionResponse(), [roleRecord(role)] + bump()))
    }
}
