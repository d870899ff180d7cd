import Foundation

/// A test network that can cut one member off from its peers while its
/// clients still reach it: the member runs in a network namespace of its
/// own, joined to the test's by two veth pairs, one that carries peer
/// traffic and one that carries client traffic. The other members' peer
/// URLs are on an address of the test namespace's loopback device, so
/// taking the peer link down cuts exactly the isolated member's peer
/// traffic. Needs root (`ip netns`), as CI has.
final class NetworkPartition {
    static let ip = "/usr/sbin/ip"

    let namespace: String
    /// The test namespace's ends of the two veth pairs.
    private let peerLink: String
    private let clientLink: String
    private let subnet: Int

    /// Where the members outside the namespace listen for peers.
    var outsidePeerHost: String { "10.230.\(subnet).1" }
    /// The isolated member's peer and client addresses.
    var isolatedPeerHost: String { "10.231.\(subnet).2" }
    var isolatedClientHost: String { "10.232.\(subnet).2" }

    init() throws {
        let tag = String(UInt32.random(in: 0...0xFF_FFFF), radix: 16)
        namespace = "ballot-\(tag)"
        peerLink = "bp\(tag)o"
        clientLink = "bc\(tag)o"
        subnet = Int.random(in: 1...254)
        do {
            try ip("netns", "add", namespace)
            try ip("addr", "add", "\(outsidePeerHost)/32", "dev", "lo")
            for (link, net) in [(peerLink, 231), (clientLink, 232)] {
                let inside = String(link.dropLast()) + "i"
                try ip("link", "add", link, "type", "veth", "peer", "name", inside)
                try ip("link", "set", inside, "netns", namespace)
                try ip("addr", "add", "10.\(net).\(subnet).1/30", "dev", link)
                try ip("link", "set", link, "up")
                try ip("netns", "exec", namespace, Self.ip, "addr", "add", "10.\(net).\(subnet).2/30", "dev", inside)
                try ip("netns", "exec", namespace, Self.ip, "link", "set", inside, "up")
            }
            try ip("netns", "exec", namespace, Self.ip, "link", "set", "lo", "up")
            try routeToOutside()
        } catch {
            remove()
            throw error
        }
    }

    /// Cut the isolated member off from its peers (its clients still reach it).
    func cutPeers() throws {
        try ip("link", "set", peerLink, "down")
    }

    func healPeers() throws {
        try ip("link", "set", peerLink, "up")
        try routeToOutside()
    }

    /// Delete the namespace (its veth ends, and with them their pairs) and
    /// the loopback address. Stop the isolated member first.
    func remove() {
        _ = try? ip("netns", "del", namespace)
        _ = try? ip("link", "del", peerLink)
        _ = try? ip("link", "del", clientLink)
        _ = try? ip("addr", "del", "\(outsidePeerHost)/32", "dev", "lo")
    }

    /// Inside the namespace, the outside members' peer address is reached
    /// through the peer link.
    private func routeToOutside() throws {
        try ip("netns", "exec", namespace, Self.ip, "route", "replace", "\(outsidePeerHost)/32", "via", "10.231.\(subnet).1")
    }

    @discardableResult
    private func ip(_ arguments: String...) throws -> TestCluster.Output {
        let run = try TestCluster.run(Self.ip, arguments, timeout: 10)
        guard run.status == 0 else { throw TestFailure("ip \(arguments.joined(separator: " ")): \(run.stderr)") }
        return run
    }
}
