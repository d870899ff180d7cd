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

    /// A snapshot from the leader: written in full and verified against
    /// its announced size and checksum before the core hears of it, so the
    /// core only ever accepts a snapshot whose bytes are already durable here.
    func sendSnapshot(request: RPCAsyncSequence<Ballotpb_SnapshotChunk, any Error>, context: ServerContext) async throws -> Ballotpb_SnapshotAck {
        var receiver: SnapshotReceiver?
        var announce: Consensus.Message?
        var nextReport = 0
        do {
            for try await chunk in request {
                if receiver == nil {
                    try check(chunk.clusterID)
                    guard let message = ConsensusCodec.decodeMessage([UInt8](chunk.message)), message.from.rawValue == chunk.from,
                        message.to == node.id, case .snapshot(let metadata) = message.kind
                    else {
                        throw RPCError(code: .invalidArgument, message: "a snapshot stream must start with its announcement, addressed to this member")
                    }
                    receiver = try node.snapshots.receiver(for: metadata, size: Int(clamping: chunk.size), checksum: chunk.checksum)
                    announce = message
                    node.logger.info("receiving a snapshot", metadata: [
                        "from": "\(message.from)", "index": "\(metadata.index)", "bytes": "\(chunk.size)",
                    ])
                }
                try receiver!.append([UInt8](chunk.data))
                let percent = receiver!.written * 100 / receiver!.size
                if percent >= nextReport {
                    node.logger.info("snapshot receive progress", metadata: [
                        "received": "\(receiver!.written)", "total": "\(receiver!.size)", "percent": "\(percent)",
                    ])
                    nextReport = percent / 10 * 10 + 10
                }
            }
            guard let receiver, let announce else {
                throw RPCError(code: .invalidArgument, message: "empty snapshot stream")
            }
            let info = try await Node.onThread("ballot-snapshot") { try receiver.finish() }
            node.logger.info("received a snapshot", metadata: ["index": "\(info.metadata.index)", "bytes": "\(info.size)"])
            node.receive([announce])
        } catch let error as StorageError {
            receiver?.abandon()
            node.logger.warning("refused a snapshot", metadata: ["error": "\(error)"])
            throw RPCError(code: .dataLoss, message: "\(error)")
        } catch {
            receiver?.abandon()
            throw error
        }
        return Ballotpb_SnapshotAck()
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
