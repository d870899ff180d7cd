import EtcdAPI

/// A response carrying etcd's header, from which the client learns which
/// member answered.
protocol EtcdResponse: Sendable {
    var header: Etcdserverpb_ResponseHeader { get }
}

extension Etcdserverpb_RangeResponse: EtcdResponse {}
extension Etcdserverpb_PutResponse: EtcdResponse {}
extension Etcdserverpb_DeleteRangeResponse: EtcdResponse {}
extension Etcdserverpb_TxnResponse: EtcdResponse {}
extension Etcdserverpb_LeaseGrantResponse: EtcdResponse {}
extension Etcdserverpb_LeaseRevokeResponse: EtcdResponse {}
extension Etcdserverpb_LeaseTimeToLiveResponse: EtcdResponse {}
extension Etcdserverpb_StatusResponse: EtcdResponse {}
extension Etcdserverpb_MemberListResponse: EtcdResponse {}
extension V3lockpb_LockResponse: EtcdResponse {}
extension V3lockpb_UnlockResponse: EtcdResponse {}
extension V3electionpb_CampaignResponse: EtcdResponse {}
extension V3electionpb_ProclaimResponse: EtcdResponse {}
extension V3electionpb_LeaderResponse: EtcdResponse {}
extension V3electionpb_ResignResponse: EtcdResponse {}
