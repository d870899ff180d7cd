import Consensus
import EtcdAPI
import Foundation
import GRPCCore
import Storage

/// The receiving side of the peer protocol.
struct PeerService: Ballotpb_Peer.SimpleServiceProtocol {
    let node: Node
    let members: MemberDirectory

    private func check(_ clusterID: UInt64) throws {
        guard clusterID == node.clusterID else {
            throw RPCError(code: .failedPrecondition, message: "request from cluster \(String(clusterID, radix: 16)), this member is in cluster \(String(node.clusterID, radix: 16)): check --initial-cluster-token")
        }
    }

    func send(request: RPCAsyncSequence<Ballotpb_PeerBatch, any Error>, context: ServerContext) async throws -> Ballotpb_PeerAck {
        for try await batch in request {
            try check(batch.clusterID)
            if members.wasRemoved(NodeID(batch.from)) {
                throw RPCError(code: .failedPrecondition, message: PeerTransport.removedMessage)
            }
            var messages: [Consensus.Message] = []
            messages.reserveCapacity(batch.messages.count)
            for bytes in batch.messages {
                // A frame this code did not write is dropped, not trusted.
                guard let message = ConsensusCodec.decodeMessage([UInt8](bytes)), message.from.rawValue == batch.from else {
                    node.logger.warning("dropping an undecodable peer message", metadata: ["from": "\(batch.from)"])
                    continue
                }
                messages.append(message)
            }
            if !messages.isEmpty { node.receive(messages) }
        }
        return Ballotpb_PeerAck()
    }

    func sendSnapshot(request: RPCAsyncSequence<Ballotpb_SnapshotChunk, any Error>, context: ServerContext) async throws -> Ballotpb_SnapshotAck {
        throw RPCError(code: .unimplemented, message: "snapshot streaming is not implemented yet")
    }

    func forward(request: Ballotpb_ForwardRequest, context: ServerContext) async throws -> Ballotpb_ForwardResponse {
        try check(request.clusterID)
        let command = try Ballotpb_Command(serializedBytes: request.command)
        guard node.status.role == .leader else { throw EtcdError.noLeader.rpcError }
        var response = Ballotpb_ForwardResponse()
        do {
            response.result = try await node.proposeLocally(command)
        } catch let error as EtcdError {
            response.result.errorCode = UInt32(error.code.rawValue)
            response.result.errorMessage = error.description
        }
        return response
    }

    func readIndex(request: Ballotpb_ReadIndexRequest, context: ServerContext) async throws -> Ballotpb_ReadIndexResponse {
        try check(request.clusterID)
        guard node.status.role == .leader else { throw EtcdError.noLeader.rpcError }
        do {
            var response = Ballotpb_ReadIndexResponse()
            response.index = try await node.readIndexLocally().rawValue
            return response
        } catch let error as EtcdError {
            throw error.rpcError
        }
    }

    func lease(request: Ballotpb_LeaseForward, context: ServerContext) async throws -> Ballotpb_LeaseForwardResponse {
        try check(request.clusterID)
        guard node.status.role == .leader else { throw EtcdError.noLeader.rpcError }
        var response = Ballotpb_LeaseForwardResponse()
        do {
            switch request.request {
            case .keepAlive(let keepAlive): response.keepAlive = try await node.keepAlive(keepAlive)
            case .timeToLive(let timeToLive): response.timeToLive = try await node.timeToLive(timeToLive)
            case nil: throw RPCError(code: .invalidArgument, message: "empty lease request")
            }
        } catch let error as EtcdError {
            throw error.rpcError
        }
        return response
    }

    func changeMembership(request: Ballotpb_MembershipForward, context: ServerContext) async throws -> Ballotpb_MembershipForwardResponse {
        try check(request.clusterID)
        guard node.status.role == .leader else { throw EtcdError.noLeader.rpcError }
        do {
            var response = Ballotpb_MembershipForwardResponse()
            response.member = try await node.changeMembership(request)
            return response
        } catch let error as EtcdError {
            throw error.rpcError
        }
    }

    func ping(request: Ballotpb_PingRequest, context: ServerContext) async throws -> Ballotpb_PingResponse {
        try check(request.clusterID)
        return Ballotpb_PingResponse()
    }
}
