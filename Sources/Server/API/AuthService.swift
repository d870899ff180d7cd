import EtcdAPI
import Foundation
import GRPCCore
import HummingbirdBcrypt
import NIOPosix
import StateMachine
import SwiftProtobuf

/// etcd's Auth service. Every call goes through consensus, the reads too,
/// as in etcd: each member applies it to its auth store (`AuthStore`),
/// checking the caller there. Passwords never enter the log: this member
/// hashes them with bcrypt (`--bcrypt-cost`) before proposing, and checks
/// an Authenticate's password itself before proposing the token's entry.
struct AuthService: Etcdserverpb_Auth.SimpleServiceProtocol {
    let node: Node

    /// Propose `request` (set into an `AuthCommand` by `fill`) as the caller,
    /// and answer with the response its member produced.
    private func propose<Response: AuthResponse>(
        carryingCaller: Bool = true, _ fill: (inout Ballotpb_AuthCommand) -> Void, _ response: Response.Type = Response.self
    ) async throws -> Response {
        try await rpc {
            var command = Ballotpb_Command()
            if carryingCaller, let header = try await node.authHeader() { command.authHeader = header }
            var auth = Ballotpb_AuthCommand()
            fill(&auth)
            command.auth = auth
            let result = try await node.propose(command)
            var answer = try Response(serializedBytes: result.auth)
            answer.header = node.header(revision: try node.read { $0.currentRevision })
            return answer
        }
    }

    /// bcrypt takes 50-100 ms of CPU at etcd's default cost: on NIO's
    /// blocking-work pool, never on an event loop or the cooperative pool
    /// (2 threads here), which every other call's task needs.
    private func hash(_ password: String) async throws -> String {
        let cost = UInt8(node.bcryptCost)
        return try await NIOThreadPool.singleton.runIfActive { Bcrypt.hash(password, cost: cost) }
    }

    private func verify(_ password: String, hash: String) async throws -> Bool {
        try await NIOThreadPool.singleton.runIfActive { Bcrypt.verify(password, hash: hash) }
    }

    func authEnable(request: Etcdserverpb_AuthEnableRequest, context: ServerContext) async throws -> Etcdserverpb_AuthEnableResponse {
        try await propose { $0.enable = request }
    }

    func authDisable(request: Etcdserverpb_AuthDisableRequest, context: ServerContext) async throws -> Etcdserverpb_AuthDisableResponse {
        try await propose { $0.disable = request }
    }

    /// etcd's Authenticate: the password checked here against the hash the
    /// auth store holds, then a token assigned through the log; again if
    /// the auth store changed meanwhile (the check may be stale).
    func authenticate(request: Etcdserverpb_AuthenticateRequest, context: ServerContext) async throws -> Etcdserverpb_AuthenticateResponse {
        do {
            return try await login(request)
        } catch let error as RPCError {
            // The audit names the user a failed login tried (`AuditInterceptor` leaves Authenticate here).
            node.audit.record(error, method: context.descriptor.fullyQualifiedMethod, user: request.name,
                              remote: RequestCredentials.clientAddress ?? context.remotePeer)
            throw error
        }
    }

    private func login(_ request: Etcdserverpb_AuthenticateRequest) async throws -> Etcdserverpb_AuthenticateResponse {
        try await rpc {
            try await node.linearizableBarrier()
            while true {
                let found = try node.read { _ in node.auth.passwordHash(of: request.name) }
                let (hash, revision): (String, UInt64)
                switch found {
                case .success(let user): (hash, revision) = user
                case .failure(let refusal): throw EtcdError.auth(refusal)
                }
                guard !hash.isEmpty, try await verify(request.password, hash: hash) else { throw EtcdError.auth(.authFailed) }
                var named = Etcdserverpb_AuthenticateRequest()
                named.name = request.name
                // Not judged by the token it may carry (an expired one would
                // refuse every new login: etcd stopped judging it in 3.4.10).
                var response: Etcdserverpb_AuthenticateResponse = try await propose(carryingCaller: false) { command in
                    command.authenticate = named
                    command.simpleTokenPrefix = node.jwt == nil ? SimpleTokens.randomPrefix() : ""
                }
                let now = try node.read { _ in node.auth.revision }
                guard now == revision else { continue }
                if let jwt = node.jwt {
                    // etcd signs the JWT where the Authenticate entry applied; the
                    // member answering signs it here, at the revision now.
                    guard let token = try await jwt.value.issue(username: request.name, revision: now) else {
                        throw RPCError(code: .unknown, message: "auth: token signing attempted with verify-only key")
                    }
                    response.token = token
                }
                return response
            }
        }
    }

    func userAdd(request: Etcdserverpb_AuthUserAddRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserAddResponse {
        let hashed = request.options.noPassword ? "" : try await rpc { try await hash(request.password) }
        var request = request
        request.password = ""
        return try await propose { command in
            command.userAdd = request
            command.hashedPassword = hashed
        }
    }

    func userGet(request: Etcdserverpb_AuthUserGetRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserGetResponse {
        try await propose { $0.userGet = request }
    }

    func userList(request: Etcdserverpb_AuthUserListRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserListResponse {
        try await propose { $0.userList = request }
    }

    func userDelete(request: Etcdserverpb_AuthUserDeleteRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserDeleteResponse {
        try await propose { $0.userDelete = request }
    }

    func userChangePassword(
        request: Etcdserverpb_AuthUserChangePasswordRequest, context: ServerContext
    ) async throws -> Etcdserverpb_AuthUserChangePasswordResponse {
        let hashed = try await rpc { try await hash(request.password) }
        var request = request
        request.password = ""
        return try await propose { command in
            command.userChangePassword = request
            command.hashedPassword = hashed
        }
    }

    func userGrantRole(request: Etcdserverpb_AuthUserGrantRoleRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserGrantRoleResponse {
        try await propose { $0.userGrantRole = request }
    }

    func userRevokeRole(request: Etcdserverpb_AuthUserRevokeRoleRequest, context: ServerContext) async throws -> Etcdserverpb_AuthUserRevokeRoleResponse {
        try await propose { $0.userRevokeRole = request }
    }

    func roleAdd(request: Etcdserverpb_AuthRoleAddRequest, context: ServerContext) async throws -> Etcdserverpb_AuthRoleAddResponse {
        try await propose { $0.roleAdd = request }
    }

    func roleGet(request: Etcdserverpb_AuthRoleGetRequest, context: ServerContext) async throws -> Etcdserverpb_AuthRoleGetResponse {
        try await propose { $0.roleGet = request }
    }

    func roleList(request: Etcdserverpb_AuthRoleListRequest, context: ServerContext) async throws -> Etcdserverpb_AuthRoleListResponse {
        try await propose { $0.roleList = request }
    }

    func roleDelete(request: Etcdserverpb_AuthRoleDeleteRequest, context: ServerContext) async throws -> Etcdserverpb_AuthRoleDeleteResponse {
        try await propose { $0.roleDelete = request }
    }

    func roleGrantPermission(
        request: Etcdserverpb_AuthRoleGrantPermissionRequest, context: ServerContext
    ) async throws -> Etcdserverpb_AuthRoleGrantPermissionResponse {
        try await propose { $0.roleGrantPermission = request }
    }

    func roleRevokePermission(
        request: Etcdserverpb_AuthRoleRevokePermissionRequest, context: ServerContext
    ) async throws -> Etcdserverpb_AuthRoleRevokePermissionResponse {
        try await propose { $0.roleRevokePermission = request }
    }
}

/// An Auth service response: a protobuf message with etcd's header.
protocol AuthResponse: SwiftProtobuf.Message, ResponseWithHeader {}

extension Etcdserverpb_AuthEnableResponse: AuthResponse {}
extension Etcdserverpb_AuthDisableResponse: AuthResponse {}
extension Etcdserverpb_AuthenticateResponse: AuthResponse {}
extension Etcdserverpb_AuthUserAddResponse: AuthResponse {}
extension Etcdserverpb_AuthUserGetResponse: AuthResponse {}
extension Etcdserverpb_AuthUserListResponse: AuthResponse {}
extension Etcdserverpb_AuthUserDeleteResponse: AuthResponse {}
extension Etcdserverpb_AuthUserChangePasswordResponse: AuthResponse {}
extension Etcdserverpb_AuthUserGrantRoleResponse: AuthResponse {}
extension Etcdserverpb_AuthUserRevokeRoleResponse: AuthResponse {}
extension Etcdserverpb_AuthRoleAddResponse: AuthResponse {}
extension Etcdserverpb_AuthRoleGetResponse: AuthResponse {}
extension Etcdserverpb_AuthRoleListResponse: AuthResponse {}
extension Etcdserverpb_AuthRoleDeleteResponse: AuthResponse {}
extension Etcdserverpb_AuthRoleGrantPermissionResponse: AuthResponse {}
extension Etcdserverpb_AuthRoleRevokePermissionResponse: AuthResponse {}
