import Consensus
@_spi(BugInjection) import Raft

extension InteractionEnvironment {
    /// Runs one command line; its printed output is the test's expectation.
    mutating func run(_ line: String) throws -> String {
        output = []
        var words = line.split(separator: " ").map(String.init)
        let command = words.removeFirst()
        var named: [String: String] = [:]
        var plain: [String] = []
        for w in words {
            if let eq = w.firstIndex(of: "="), !w.hasPrefix("\"") {
                named[String(w[..<eq])] = String(w[w.index(after: eq)...])
            } else {
                plain.append(w)
            }
        }
        func id(_ i: Int) throws -> NodeID {
            guard i < plain.count, let v = UInt64(plain[i]) else { throw HarnessError("\(command): member id expected") }
            return NodeID(v)
        }
        func parseIDs(_ list: String?) -> Set<NodeID> {
            Set((list ?? "").split(separator: ",").compactMap { UInt64($0) }.map { NodeID($0) })
        }
        func int(_ key: String) -> Int? { named[key].flatMap { Int($0) } }

        switch command {
        case "add-nodes":
            guard let count = plain.first.flatMap(UInt64.init) else { throw HarnessError("add-nodes N") }
            if let v = named["pre-vote"] { settings.preVote = v == "true" }
            if let v = named["check-quorum"] { settings.checkQuorum = v == "true" }
            if named["read-mode"] == "lease" { settings.readMode = .leaseBased }
            if let v = int("election") { settings.electionTicks = v }
            if let v = int("heartbeat") { settings.heartbeatTicks = v }
            if let v = int("append-bytes") { settings.appendBytesMax = v }
            if let v = int("window") { settings.inflightMessagesMax = v }
            if let v = int("uncommitted-bytes") { settings.uncommittedBytesMax = v }
            if let v = int("entry-bytes") { settings.entryBytesMax = v }
            if let v = int("pending-reads") { settings.pendingReadsMax = v }
            let voters = named["voters"].map { parseIDs($0) } ?? Set((1...count).map { NodeID($0) })
            let membership = Membership(voters: voters, learners: parseIDs(named["learners"]))
            for n in 1...count {
                let nid = NodeID(n)
                do {
                    if membership.allMembers.contains(nid) {
                        cores[nid] = try RaftCore(id: nid, bootstrap: membership, settings: settings, seed: 7)
                    } else {
                        cores[nid] = try RaftCore(id: nid, settings: settings, seed: 7, state: .empty)
                    }
                } catch {
                    say("error: \(error)")
                    return output.joined(separator: "\n")
                }
            }
            say(ids.map(statusLine).joined(separator: "\n"))
        case "campaign":
            cores[try id(0)]!.campaign()
            say("ok")
        case "tick":
            let target = try id(0)
            for _ in 0..<(int("count") ?? 1) { cores[target]!.tick() }
            say("ok")
        case "tick-all":
            for _ in 0..<(int("count") ?? 1) { for n in ids { cores[n]!.tick() } }
            say("ok")
        case "propose":
            let target = try id(0)
            let data = plain.dropFirst().joined(separator: " ")
            let repeatCount = int("count") ?? 1
            do {
                let first = try cores[target]!.propose(Array(repeating: Array(data.utf8), count: repeatCount))
                say("proposed at \(first)")
            } catch {
                say("error: \(error)")
            }
        case "propose-conf":
            let target = try id(0)
            var steps: [ConfigChange.Step] = []
            for word in plain.dropFirst() {
                guard let n = UInt64(word.drop { !$0.isNumber }) else { throw HarnessError("bad step \(word)") }
                if word.hasPrefix("v+") { steps.append(.addVoter(NodeID(n))) }
                else if word.hasPrefix("v-") { steps.append(.removeVoter(NodeID(n))) }
                else if word.hasPrefix("l+") { steps.append(.addLearner(NodeID(n))) }
                else if word.hasPrefix("l->v") { steps.append(.promoteLearner(NodeID(n))) }
                else { throw HarnessError("bad step \(word)") }
            }
            do {
                let index = try cores[target]!.proposeConfigChange(ConfigChange(kind: .change, changes: steps))
                say("proposed at \(index)")
            } catch {
                say("error: \(error)")
            }
        case "read-index":
            let target = try id(0)
            guard plain.count > 1, let context = UInt64(plain[1]) else { throw HarnessError("read-index ID CONTEXT") }
            do {
                // `lease=false`: a read that may not use the leader's lease.
                try cores[target]!.readIndex(context: context, mayUseLease: named["lease"] != "false")
                say("ok")
            } catch {
                say("error: \(error)")
            }
        case "transfer":
            let target = try id(0)
            do {
                try cores[target]!.transferLeadership(to: try id(1))
                say("ok")
            } catch {
                say("error: \(error)")
            }
        case "compact":
            let target = try id(0)
            guard plain.count > 1, let index = UInt64(plain[1]) else { throw HarnessError("compact ID INDEX") }
            do {
                try cores[target]!.compact(through: LogIndex(index))
                say("ok: first index now \(cores[target]!.firstIndex)")
            } catch {
                say("error: \(error)")
            }
        case "stabilize":
            try stabilize(Set(plain.compactMap { UInt64($0) }.map { NodeID($0) }))
            if output.isEmpty { say("ok") }
        case "process-ready":
            for n in plain.compactMap({ UInt64($0) }) { try processReady(NodeID(n)) }
            if output.isEmpty { say("ok") }
        case "deliver-msgs":
            deliver(to: Set(plain.compactMap { UInt64($0) }.map { NodeID($0) }), drop: named["drop"] == "true")
            if output.isEmpty { say("ok") }
        case "partition":
            // partition 1 | 2 3: cut every link across the bar, both ways.
            let sides = line.dropFirst("partition".count).split(separator: "|").map {
                Set($0.split(separator: " ").compactMap { UInt64($0) }.map { NodeID($0) })
            }
            guard sides.count == 2 else { throw HarnessError("partition A B | C D") }
            for a in sides[0] { for b in sides[1] { cut.insert(Pair(from: a, to: b)); cut.insert(Pair(from: b, to: a)) } }
            say("ok")
        case "heal":
            cut = []
            say("ok")
        case "crash":
            // Whatever was not persisted by a processed Ready is gone.
            let target = try id(0)
            cores[target] = nil
            mailbox.removeAll { $0.to == target }
            say("ok")
        case "restart":
            let target = try id(0)
            cores[target] = try RaftCore(id: target, settings: settings, seed: 11, state: disks[target] ?? .empty)
            say(statusLine(target))
        case "status":
            let target = try id(0)
            say(statusLine(target))
            let c = cores[target]!
            for peer in c.membership.allMembers.sorted() where peer != target {
                if let p = c.replicationState(of: peer) { say("  \(peer): match=\(p.match) next=\(p.next) \(p.state)") }
            }
        case "raft-state":
            for n in ids { say(statusLine(n)) }
        case "log":
            let c = try core(try id(0))
            var lines: [String] = []
            if c.snapshotMetadata.index > .zero { lines.append("\(c.snapshotMetadata)") }
            var i = c.firstIndex
            while i <= c.lastIndex {
                lines.append(Self.describe(c.entry(at: i)!))
                i = i + 1
            }
            say(lines.isEmpty ? "empty" : lines.joined(separator: "\n"))
        default:
            throw HarnessError("unknown command \(command)")
        }
        return output.joined(separator: "\n")
    }
}
