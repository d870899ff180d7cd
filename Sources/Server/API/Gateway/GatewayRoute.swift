import EtcdAPI
import GRPCCore
import SwiftProtobuf

/// One path of etcd's JSON gateway: the gRPC method it calls and the
/// messages it converts. The paths are etcd 3.4's `google.api.http`
/// annotations (every one is a POST whose body is the whole request).
struct GatewayRoute: Sendable {
    enum Shape: Sendable {
        /// One request, one response.
        case unary
        /// One request, a stream of responses (`Snapshot`, `Observe`).
        case serverStream
        /// Requests and responses both streamed; the JSON body may hold
        /// several requests. `holdsOpen` keeps the request side open after
        /// the body ends, until the HTTP client leaves: etcd's watch stream
        /// outlives a client's half-close, its keep-alive stream does not.
        case bidiStream(holdsOpen: Bool)
    }

    let method: MethodDescriptor
    let request: any SwiftProtobuf.Message.Type
    let response: any SwiftProtobuf.Message.Type
    let shape: Shape

    init(_ method: MethodDescriptor, _ request: any SwiftProtobuf.Message.Type,
         _ response: any SwiftProtobuf.Message.Type, _ shape: Shape = .unary) {
        self.method = method
        self.request = request
        self.response = response
        self.shape = shape
    }

    /// A request in JSON as the binary message the gRPC method takes.
    func binaryRequest(json: [UInt8]) throws -> [UInt8] {
        let message: any SwiftProtobuf.Message = try request.init(jsonUTF8Bytes: json, extensions: nil, options: GatewayJSON.decoding)
        let binary: [UInt8] = try message.serializedBytes()
        return binary
    }

    /// A binary response as the gateway's JSON.
    func jsonResponse(binary: [UInt8]) throws -> [UInt8] {
        let message: any SwiftProtobuf.Message = try response.init(serializedBytes: binary, extensions: nil, partial: false, options: BinaryDecodingOptions())
        let json: [UInt8] = try message.jsonUTF8Bytes(options: GatewayJSON.encoding)
        return json
    }

    /// etcd 3.4 also serves every path under `/v3beta/` (it rewrites the
    /// prefix to `/v3/`); `/v3alpha/` is gone since 3.4.
    static let betaPrefix = "/v3beta/"

    /// The route for a request path, `/v3beta/` read as `/v3/`.
    static func find(_ path: String) -> GatewayRoute? {
        var path = path
        if path.hasPrefix(betaPrefix) { path = "/v3/" + path.dropFirst(betaPrefix.count) }
        return table[path]
    }

    /// Whether a path belongs to the gateway (so a wrong method is 405, not 404).
    static func owns(_ path: String) -> Bool {
        path.hasPrefix("/v3/") || path.hasPrefix(betaPrefix)
    }

    typealias KV = Etcdserverpb_KV.Method
    typealias Watch = Etcdserverpb_Watch.Method
    typealias Lease = Etcdserverpb_Lease.Method
    typealias Cluster = Etcdserverpb_Cluster.Method
    typealias Maintenance = Etcdserverpb_Maintenance.Method
    typealias Auth = Etcdserverpb_Auth.Method
    typealias Lock = V3lockpb_Lock.Method
    typealias Election = V3electionpb_Election.Method

    /// etcd 3.4's gateway paths (rpc.proto's HTTP annotations).
    /// `/v3/maintenance/hash` is annotated on both Hash and HashKV; etcd's
    /// gateway mux lets the later registration, HashKV, win.
    static let table: [String: GatewayRoute] = [
        "/v3/kv/range": .init(KV.Range.descriptor, Etcdserverpb_RangeRequest.self, Etcdserverpb_RangeResponse.self),
        "/v3/kv/put": .init(KV.Put.descriptor, Etcdserverpb_PutRequest.self, Etcdserverpb_PutResponse.self),
        "/v3/kv/deleterange": .init(KV.DeleteRange.descriptor, Etcdserverpb_DeleteRangeRequest.self, Etcdserverpb_DeleteRangeResponse.self),
        "/v3/kv/txn": .init(KV.Txn.descriptor, Etcdserverpb_TxnRequest.self, Etcdserverpb_TxnResponse.self),
        "/v3/kv/compaction": .init(KV.Compact.descriptor, Etcdserverpb_CompactionRequest.self, Etcdserverpb_CompactionResponse.self),
        "/v3/watch": .init(Watch.Watch.descriptor, Etcdserverpb_WatchRequest.self, Etcdserverpb_WatchResponse.self, .bidiStream(holdsOpen: true)),
        "/v3/lease/grant": .init(Lease.LeaseGrant.descriptor, Etcdserverpb_LeaseGrantRequest.self, Etcdserverpb_LeaseGrantResponse.self),
        "/v3/lease/revoke": .init(Lease.LeaseRevoke.descriptor, Etcdserverpb_LeaseRevokeRequest.self, Etcdserverpb_LeaseRevokeResponse.self),
        "/v3/kv/lease/revoke": .init(Lease.LeaseRevoke.descriptor, Etcdserverpb_LeaseRevokeRequest.self, Etcdserverpb_LeaseRevokeResponse.self),
        "/v3/lease/keepalive": .init(Lease.LeaseKeepAlive.descriptor, Etcdserverpb_LeaseKeepAliveRequest.self, Etcdserverpb_LeaseKeepAliveResponse.self, .bidiStream(holdsOpen: false)),
        "/v3/lease/timetolive": .init(Lease.LeaseTimeToLive.descriptor, Etcdserverpb_LeaseTimeToLiveRequest.self, Etcdserverpb_LeaseTimeToLiveResponse.self),
        "/v3/kv/lease/timetolive": .init(Lease.LeaseTimeToLive.descriptor, Etcdserverpb_LeaseTimeToLiveRequest.self, Etcdserverpb_LeaseTimeToLiveResponse.self),
        "/v3/lease/leases": .init(Lease.LeaseLeases.descriptor, Etcdserverpb_LeaseLeasesRequest.self, Etcdserverpb_LeaseLeasesResponse.self),
        "/v3/kv/lease/leases": .init(Lease.LeaseLeases.descriptor, Etcdserverpb_LeaseLeasesRequest.self, Etcdserverpb_LeaseLeasesResponse.self),
        "/v3/cluster/member/add": .init(Cluster.MemberAdd.descriptor, Etcdserverpb_MemberAddRequest.self, Etcdserverpb_MemberAddResponse.self),
        "/v3/cluster/member/remove": .init(Cluster.MemberRemove.descriptor, Etcdserverpb_MemberRemoveRequest.self, Etcdserverpb_MemberRemoveResponse.self),
        "/v3/cluster/member/update": .init(Cluster.MemberUpdate.descriptor, Etcdserverpb_MemberUpdateRequest.self, Etcdserverpb_MemberUpdateResponse.self),
        "/v3/cluster/member/list": .init(Cluster.MemberList.descriptor, Etcdserverpb_MemberListRequest.self, Etcdserverpb_MemberListResponse.self),
        "/v3/cluster/member/promote": .init(Cluster.MemberPromote.descriptor, Etcdserverpb_MemberPromoteRequest.self, Etcdserverpb_MemberPromoteResponse.self),
        "/v3/maintenance/alarm": .init(Maintenance.Alarm.descriptor, Etcdserverpb_AlarmRequest.self, Etcdserverpb_AlarmResponse.self),
        "/v3/maintenance/status": .init(Maintenance.Status.descriptor, Etcdserverpb_StatusRequest.self, Etcdserverpb_StatusResponse.self),
        "/v3/maintenance/defragment": .init(Maintenance.Defragment.descriptor, Etcdserverpb_DefragmentRequest.self, Etcdserverpb_DefragmentResponse.self),
        "/v3/maintenance/hash": .init(Maintenance.HashKV.descriptor, Etcdserverpb_HashKVRequest.self, Etcdserverpb_HashKVResponse.self),
        "/v3/maintenance/snapshot": .init(Maintenance.Snapshot.descriptor, Etcdserverpb_SnapshotRequest.self, Etcdserverpb_SnapshotResponse.self, .serverStream),
        "/v3/maintenance/transfer-leadership": .init(Maintenance.MoveLeader.descriptor, Etcdserverpb_MoveLeaderRequest.self, Etcdserverpb_MoveLeaderResponse.self),
        "/v3/lock/lock": .init(Lock.Lock.descriptor, V3lockpb_LockRequest.self, V3lockpb_LockResponse.self),
        "/v3/lock/unlock": .init(Lock.Unlock.descriptor, V3lockpb_UnlockRequest.self, V3lockpb_UnlockResponse.self),
        "/v3/election/campaign": .init(Election.Campaign.descriptor, V3electionpb_CampaignRequest.self, V3electionpb_CampaignResponse.self),
        "/v3/election/proclaim": .init(Election.Proclaim.descriptor, V3electionpb_ProclaimRequest.self, V3electionpb_ProclaimResponse.self),
        "/v3/election/leader": .init(Election.Leader.descriptor, V3electionpb_LeaderRequest.self, V3electionpb_LeaderResponse.self),
        "/v3/election/observe": .init(Election.Observe.descriptor, V3electionpb_LeaderRequest.self, V3electionpb_LeaderResponse.self, .serverStream),
        "/v3/election/resign": .init(Election.Resign.descriptor, V3electionpb_ResignRequest.self, V3electionpb_ResignResponse.self),
        // etcd's Auth service (`AuthService`); a token comes in the HTTP
        // `Authorization` header (`ClientHTTPHandler.metadata`).
        "/v3/auth/enable": .init(Auth.AuthEnable.descriptor, Etcdserverpb_AuthEnableRequest.self, Etcdserverpb_AuthEnableResponse.self),
        "/v3/auth/disable": .init(Auth.AuthDisable.descriptor, Etcdserverpb_AuthDisableRequest.self, Etcdserverpb_AuthDisableResponse.self),
        "/v3/auth/authenticate": .init(Auth.Authenticate.descriptor, Etcdserverpb_AuthenticateRequest.self, Etcdserverpb_AuthenticateResponse.self),
        "/v3/auth/user/add": .init(Auth.UserAdd.descriptor, Etcdserverpb_AuthUserAddRequest.self, Etcdserverpb_AuthUserAddResponse.self),
        "/v3/auth/user/get": .init(Auth.UserGet.descriptor, Etcdserverpb_AuthUserGetRequest.self, Etcdserverpb_AuthUserGetResponse.self),
        "/v3/auth/user/list": .init(Auth.UserList.descriptor, Etcdserverpb_AuthUserListRequest.self, Etcdserverpb_AuthUserListResponse.self),
        "/v3/auth/user/delete": .init(Auth.UserDelete.descriptor, Etcdserverpb_AuthUserDeleteRequest.self, Etcdserverpb_AuthUserDeleteResponse.self),
        "/v3/auth/user/changepw": .init(Auth.UserChangePassword.descriptor, Etcdserverpb_AuthUserChangePasswordRequest.self, Etcdserverpb_AuthUserChangePasswordResponse.self),
        "/v3/auth/user/grant": .init(Auth.UserGrantRole.descriptor, Etcdserverpb_AuthUserGrantRoleRequest.self, Etcdserverpb_AuthUserGrantRoleResponse.self),
        "/v3/auth/user/revoke": .init(Auth.UserRevokeRole.descriptor, Etcdserverpb_AuthUserRevokeRoleRequest.self, Etcdserverpb_AuthUserRevokeRoleResponse.self),
        "/v3/auth/role/add": .init(Auth.RoleAdd.descriptor, Etcdserverpb_AuthRoleAddRequest.self, Etcdserverpb_AuthRoleAddResponse.self),
        "/v3/auth/role/get": .init(Auth.RoleGet.descriptor, Etcdserverpb_AuthRoleGetRequest.self, Etcdserverpb_AuthRoleGetResponse.self),
        "/v3/auth/role/list": .init(Auth.RoleList.descriptor, Etcdserverpb_AuthRoleListRequest.self, Etcdserverpb_AuthRoleListResponse.self),
        "/v3/auth/role/delete": .init(Auth.RoleDelete.descriptor, Etcdserverpb_AuthRoleDeleteRequest.self, Etcdserverpb_AuthRoleDeleteResponse.self),
        "/v3/auth/role/grant": .init(Auth.RoleGrantPermission.descriptor, Etcdserverpb_AuthRoleGrantPermissionRequest.self, Etcdserverpb_AuthRoleGrantPermissionResponse.self),
        "/v3/auth/role/revoke": .init(Auth.RoleRevokePermission.descriptor, Etcdserverpb_AuthRoleRevokePermissionRequest.self, Etcdserverpb_AuthRoleRevokePermissionResponse.self),
    ]
}
