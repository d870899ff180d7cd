import Consensus

/// A command as it travels through the log: who sent it (for exactly-once
/// retries) and what it does.
struct KVCommand: Sendable, Equatable {
    var client: Int
    var sequence: UInt64
    var operation: KVOperation

    private static let separator: UInt8 = 0x1F

    var encoded: [UInt8] {
        var fields = ["\(client)", "\(sequence)"]
        switch operation {
        case .put(let key, let value): fields += ["put", key, value]
        case .get(let key): fields += ["get", key]
        case .cas(let key, let expected, let new): fields += ["cas", key, expected.map { "=" + $0 } ?? "-", new]
        }
        return Array(fields.joined(separator: "\u{1F}").utf8)
    }

    init(client: Int, sequence: UInt64, operation: KVOperation) {
        self.client = client
        self.sequence = sequence
        self.operation = operation
    }

    init(decoding bytes: [UInt8]) {
        let fields = bytes.split(separator: Self.separator, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        precondition(fields.count >= 4, "malformed command")
        client = Int(fields[0])!
        sequence = UInt64(fields[1])!
        switch fields[2] {
        case "put": operation = .put(key: fields[3], value: fields[4])
        case "get": operation = .get(key: fields[3])
        case "cas":
            let expected = fields[4] == "-" ? nil : String(fields[4].dropFirst())
            operation = .cas(key: fields[3], expected: expected, new: fields[5])
        default: preconditionFailure("unknown command \(fields[2])")
        }
    }
}

/// Everything the state machine holds, as one value: snapshots are copies.
struct KVSnapshot: Sendable, Equatable {
    var index: LogIndex = .zero
    var values: [String: String] = [:]
    /// Per client, its last applied sequence number and result, so a retried
    /// command is answered, not applied twice.
    var sessions: [Int: (sequence: UInt64, result: KVResult)] = [:]

    static func == (a: KVSnapshot, b: KVSnapshot) -> Bool {
        a.index == b.index && a.values == b.values
            && a.sessions.count == b.sessions.count
            && a.sessions.allSatisfy { k, v in b.sessions[k].map { $0.sequence == v.sequence && $0.result == v.result } ?? false }
    }
}

/// The replicated key-value state machine: the in-memory stand-in for the
/// MVCC store, with exactly-once client sessions.
struct KVStateMachine: Sendable {
    private(set) var state = KVSnapshot()

    var appliedIndex: LogIndex { state.index }

    init() {}
    init(restoring snapshot: KVSnapshot) { state = snapshot }

    /// Apply one committed entry; returns the command and its result when it carried one.
    mutating func apply(_ entry: Entry) -> (KVCommand, KVResult)? {
        precondition(entry.index == state.index + 1, "apply gap: \(entry.index) after \(state.index)")
        state.index = entry.index
        guard case .command(let bytes) = entry.payload else { return nil }
        let command = KVCommand(decoding: bytes)
        if let session = state.sessions[command.client], session.sequence >= command.sequence {
            return session.sequence == command.sequence ? (command, session.result) : nil
        }
        let result: KVResult
        switch command.operation {
        case .put(let key, let value):
            state.values[key] = value
            result = .ok
        case .get(let key):
            result = .value(state.values[key])
        case .cas(let key, let expected, let new):
            if state.values[key] == expected {
                state.values[key] = new
                result = .swapped(true)
            } else {
                result = .swapped(false)
            }
        }
        state.sessions[command.client] = (command.sequence, result)
        return (command, result)
    }

    func read(_ key: String) -> String? { state.values[key] }
}
