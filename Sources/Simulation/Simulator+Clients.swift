import Consensus
import Raft

extension Simulator {
    /// Clients time out, retry, and start new operations.
    func tickClients() {
        for c in clients.indices {
            if let outstanding = clients[c].outstanding {
                if outstanding.deadline <= now {
                    // No answer: try another member with the same sequence number.
                    clients[c].target = randomLiveCandidate()
                    sendClientRequest(c)
                }
                continue
            }
            guard faultsOn, clients[c].nextActionAt <= now else { continue }
            startOperation(c)
        }
    }

    func startOperation(_ c: Int) {
        let key = keys.randomElement(using: &random)!
        clients[c].sequence += 1
        let value = "c\(c).\(clients[c].sequence)"
        let operation: KVOperation
        switch Int.random(in: 0..<10, using: &random) {
        case 0..<4:
            operation = .get(key: key)
            // Half the reads go to any member, so followers' forwarded
            // reads are checked as well as the leader's own.
            if random.chance(percent: 50) { clients[c].target = randomLiveCandidate() }
        case 4..<8: operation = .put(key: key, value: value)
        default:
            let expected = random.chance(percent: 20) ? nil : latestWrittenValue(key)
            operation = .cas(key: key, expected: expected, new: value)
        }
        history.append(HistoryOperation(client: c, operation: operation, invoke: now, response: nil, result: nil))
        clients[c].outstanding = (operation, history.count - 1, 0)
        sendClientRequest(c)
    }

    /// A recent value for `key`, so compare-and-swap succeeds often enough to matter.
    func latestWrittenValue(_ key: String) -> String? {
        for op in history.reversed() {
            switch op.operation {
            case .put(key, let value), .cas(key, _, let value): return value
            default: continue
            }
        }
        return nil
    }

    func sendClientRequest(_ c: Int) {
        guard let outstanding = clients[c].outstanding else { return }
        clients[c].outstanding!.deadline = now + clientTimeout
        let request = ClientRequest(client: c, sequence: clients[c].sequence, operation: outstanding.operation)
        network.send(.request(request), from: .client(c), to: .node(clients[c].target), now: now, random: &random)
    }

    func clientReceived(_ c: Int, _ response: ClientResponse) {
        guard let outstanding = clients[c].outstanding, response.sequence == clients[c].sequence else { return }
        switch response.outcome {
        case .done(let result):
            history[outstanding.history].response = now
            history[outstanding.history].result = result
            clients[c].outstanding = nil
            clients[c].nextActionAt = now + UInt64.random(in: 0...20, using: &random)
        case .notLeader(let hint):
            // Retry soon, at the hinted leader if there is one.
            clients[c].target = hint ?? randomLiveCandidate()
            clients[c].outstanding!.deadline = now + (hint == nil ? 20 : UInt64.random(in: 1...5, using: &random))
        }
    }

    func randomLiveCandidate() -> NodeID {
        let candidates = nodes.filter { $0.status != .removed }.map(\.id)
        guard let candidate = candidates.randomElement(using: &random) else {
            preconditionFailure("every member was retired:\n" + trace.lines.joined(separator: "\n"))
        }
        return candidate
    }

    func checkLinearizability() throws(SafetyViolation) {
        switch LinearizabilityChecker().check(history) {
        case .linearizable:
            return
        case .notLinearizable(let key, let explanation):
            throw SafetyViolation(.linearizability, "history of key \(key) has no linearization:\n\(explanation)")
        case .unknown(let key, let steps):
            // Not a failure of the system under test, but not a pass either.
            throw SafetyViolation(.linearizability, "undecided for key \(key) after \(steps) search steps; rerun with a larger budget")
        }
    }
}
