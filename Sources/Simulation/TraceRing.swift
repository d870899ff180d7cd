import Consensus

/// The last events of a run, kept cheaply and formatted only on failure.
struct TraceRing: Sendable {
    enum Event: Sendable {
        case packet(UInt64, SimNetwork.InFlight)
        case note(UInt64, String)
    }

    let capacity: Int
    private var events: [Event] = []
    private var next = 0

    init(capacity: Int) {
        precondition(capacity > 0, "trace needs room for one event")
        self.capacity = capacity
    }

    mutating func record(_ now: UInt64, _ packet: SimNetwork.InFlight) { append(.packet(now, packet)) }
    mutating func note(_ now: UInt64, _ text: String) { append(.note(now, text)) }

    private mutating func append(_ event: Event) {
        if events.count < capacity {
            events.append(event)
        } else {
            events[next] = event
        }
        next = (next + 1) % capacity
    }

    var lines: [String] {
        let ordered = events.count < capacity ? events : Array(events[next...] + events[..<next])
        return ordered.map { event in
            switch event {
            case .note(let t, let text): return "[\(t)] \(text)"
            case .packet(let t, let p):
                let body: String
                switch p.packet {
                case .raft(let m, _): body = m.description
                case .request(let r): body = "\(p.from)->\(p.to) request #\(r.sequence) \(r.operation)"
                case .response(let r): body = "\(p.from)->\(p.to) response #\(r.sequence) \(r.outcome)"
                }
                return "[\(t)] \(body)"
            }
        }
    }
}
