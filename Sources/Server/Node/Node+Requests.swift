import Consensus
import EtcdAPI
import Foundation
import StateMachine

/// How a request reaches consensus from any member: the leader proposes it
/// itself, a follower forwards it to the leader, and without a leader the
/// request waits for one up to the request timeout, as etcd holds a
/// proposal while there is no leader (so a script that writes right after
/// the cluster starts works). It then fails with etcd's "no leader": nothing
/// was proposed. Clients that would rather fail at once send etcd's
/// `hasleader` metadata (`RequireLeaderInterceptor`).
extension Node {
    static let leaderPollSeconds = 0.02

    /// Replicate and apply `command`; its result once applied (on the leader).
    func propose(_ command: Ballotpb_Command) async throws -> Ballotpb_CommandResult {
        let result = try await proposeAtLeader(command, until: Date().addingTimeInterval(requestTimeout))
        if !result.errorMessage.isEmpty { throw EtcdError(code: result.errorCode, message: result.errorMessage) }
        return result
    }

    /// `command` proposed by the leader (here, or forwarded), its result as
    /// the applier wrote it; `refused`: a leader that already did not take it.
    ///
    /// A proposal that a leader did not take (it was unreachable, or no
    /// longer led: etcd's "no leader", so nothing was proposed) goes to the
    /// next leader, up to `deadline`. So a write sent to a follower just
    /// after the leader died waits out the election, as etcd holds a
    /// proposal while there is no leader, instead of failing while the
    /// follower still names the dead leader. An answer that may have been
    /// served (a timeout, a connection closed after the request went out)
    /// is never sent again.
    func proposeAtLeader(_ command: Ballotpb_Command, until deadline: Date,
                         refused: (leader: NodeID, term: Term)? = nil) async throws -> Ballotpb_CommandResult {
        var leader = if let refused {
            try await nextLeader(after: refused.leader, of: refused.term, until: deadline)
        } else {
            try await awaitLeader(until: deadline)
        }
        while true {
            let term = status.term
            do {
                return leader == id
                    ? try await proposeLocally(command)
                    : try await transport.forward(command, to: leader, timeout: max(0.001, deadline.timeIntervalSinceNow))
            } catch EtcdError.noLeader where Date() < deadline {
                leader = try await nextLeader(after: leader, of: term, until: deadline)
            }
        }
    }

    /// The leader to try after `gone` (of `term`) did not take a request:
    /// another one, or one of a later term, once known; `gone` again if
    /// none is within an election timeout (it may have been unreachable
    /// for a moment only); until `deadline`.
    func nextLeader(after gone: NodeID, of term: Term, until deadline: Date) async throws -> NodeID {
        let changeBy = min(deadline, Date().addingTimeInterval(Double(electionMilliseconds) / 1000))
        if let next = try? await awaitLeader(until: changeBy, where: { $0.leader != gone || $0.term > term }) { return next }
        return try await awaitLeader(until: deadline)
    }

    /// Returns once a read from this member's store is linearizable: the
    /// leader confirmed its leadership after the read arrived (ReadIndex) and
    /// this member has applied at least that far. `lease`: the leader may
    /// confirm it by its lease, where lease reads are on (a follower's read
    /// is forwarded either way).
    func linearizableBarrier(lease: Bool = false) async throws {
        let leader = try await awaitLeader()
        // The leader batches its own reads into one heartbeat round per
        // loop turn; a follower shares one forwarded read among concurrent reads.
        let index = leader == id
            ? try await readIndex(lease: lease)
            : try await remoteReads.readIndex { [self] resume in readIndex(then: resume) }
        try await waitApplied(index)
    }

    /// The current leader, waiting until `deadline` (the request timeout
    /// from now) for one whose status `acceptable` takes.
    func awaitLeader(until deadline: Date? = nil, where acceptable: (Status) -> Bool = { _ in true }) async throws -> NodeID {
        let deadline = deadline ?? Date().addingTimeInterval(requestTimeout)
        while true {
            let now = status
            if let leader = now.leader, acceptable(now) { return leader }
            if Date() >= deadline { throw EtcdError.noLeader }
            try await Task.sleep(for: .seconds(Self.leaderPollSeconds))
        }
    }

    /// Refuse a write that would add data once the database reached its
    /// quota: raise the NOSPACE alarm through consensus (so every member
    /// refuses the same writes) and fail with etcd's error, as etcd does.
    /// Deletes, reads and compaction still work until the alarm is disarmed.
    /// Reads the size as of the store's last commit, as etcd checks its
    /// backend's size before proposing: a batch may pass the quota by what
    /// one commit adds.
    func checkQuota() async throws {
        let usage = storeUsage
        let (used, alarm) = (usage.usedBytes, usage.noSpaceAlarm)
        if alarm { throw EtcdError.noSpace }
        guard used >= quotaBytes else { return }
        var command = Ballotpb_Command()
        command.alarm.action = .activate
        command.alarm.alarm = .nospace
        command.alarm.memberID = id.rawValue
        logger.warning("database reached its quota; raising the NOSPACE alarm", metadata: ["used": "\(used)", "quota": "\(quotaBytes)"])
        _ = try? await propose(command)
        throw EtcdError.noSpace
    }
}
