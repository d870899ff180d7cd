import Consensus

/// What travels between simulated processes.
enum Packet: Sendable {
    /// A consensus message; a snapshot message carries the snapshot's bytes.
    case raft(Message, snapshot: MachineSnapshot?)
    case request(ClientRequest)
    case response(ClientResponse)
}

struct ClientRequest: Sendable {
    var client: Int
    var sequence: UInt64
    var operation: KVOperation
}

struct ClientResponse: Sendable {
    enum Outcome: Sendable {
        case done(KVResult)
        case notLeader(hint: NodeID?)
    }
    var client: Int
    var sequence: UInt64
    var outcome: Outcome
}

/// Endpoints: members and clients share one address space.
enum Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    case node(NodeID)
    case client(Int)

    var description: String {
        switch self {
        case .node(let id): "n\(id)"
        case .client(let c): "c\(c)"
        }
    }
}

/// A seeded lossy network: per-packet delay (which reorders), loss,
/// duplication, and link cuts in either or both directions.
struct SimNetwork: Sendable {
    struct InFlight: Sendable {
        var deliverAt: UInt64
        var sequence: UInt64
        var from: Address
        var to: Address
        var packet: Packet
    }

    var dropPercent = 0.0
    var duplicatePercent = 0.0
    var delayMin: UInt64 = 1
    var delayMax: UInt64 = 1
    /// Chance of an occasional long delay, and how long.
    var longDelayPercent = 0.0
    var longDelayMax: UInt64 = 1
    /// Directed links that lose everything.
    var cut: Set<Link> = []

    struct Link: Hashable, Sendable {
        var from: Address
        var to: Address
    }

    private var heap = PacketHeap()
    private var nextSequence: UInt64 = 0
    private(set) var sent = 0
    private(set) var dropped = 0
    private(set) var duplicated = 0
    static let inFlightMax = 100_000
    /// Set once the network refused a packet for lack of room.
    private(set) var overflowed = false

    var inFlightCount: Int { heap.count }

    mutating func send(_ packet: Packet, from: Address, to: Address, now: UInt64, random: inout DeterministicRandom) {
        sent += 1
        if cut.contains(Link(from: from, to: to)) || random.chance(percent: dropPercent) {
            dropped += 1
            return
        }
        let copies = random.chance(percent: duplicatePercent) ? 2 : 1
        duplicated += copies - 1
        for _ in 0..<copies {
            var delay = UInt64.random(in: delayMin...delayMax, using: &random)
            if random.chance(percent: longDelayPercent) { delay += UInt64.random(in: 1...longDelayMax, using: &random) }
            if heap.count >= Self.inFlightMax {
                // A message storm: reported by the simulator as a failure of the run.
                overflowed = true
                dropped += 1
                continue
            }
            heap.push(InFlight(deliverAt: now + delay, sequence: nextSequence, from: from, to: to, packet: packet))
            nextSequence += 1
        }
    }

    /// The next packet due at or before `now`, in delivery order. Packets on
    /// a link cut while they travel are lost on arrival.
    mutating func nextDue(now: UInt64) -> InFlight? {
        while let top = heap.top, top.deliverAt <= now {
            let packet = heap.pop()
            if cut.contains(Link(from: packet.from, to: packet.to)) {
                dropped += 1
                continue
            }
            return packet
        }
        return nil
    }
}

/// A binary min-heap on (deliverAt, sequence): equal times deliver in send order.
struct PacketHeap: Sendable {
    private var items: [SimNetwork.InFlight] = []
    var count: Int { items.count }
    var top: SimNetwork.InFlight? { items.first }

    private static func less(_ a: SimNetwork.InFlight, _ b: SimNetwork.InFlight) -> Bool {
        (a.deliverAt, a.sequence) < (b.deliverAt, b.sequence)
    }

    mutating func push(_ item: SimNetwork.InFlight) {
        items.append(item)
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if !Self.less(items[i], items[parent]) { break }
            items.swapAt(i, parent)
            i = parent
        }
    }

    mutating func pop() -> SimNetwork.InFlight {
        precondition(!items.isEmpty, "pop from an empty heap")
        items.swapAt(0, items.count - 1)
        let result = items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1
            let r = l + 1
            var smallest = i
            if l < items.count && Self.less(items[l], items[smallest]) { smallest = l }
            if r < items.count && Self.less(items[r], items[smallest]) { smallest = r }
            if smallest == i { break }
            items.swapAt(i, smallest)
            i = smallest
        }
        return result
    }
}
