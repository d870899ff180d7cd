import ArgumentParser
import Client
import Foundation

/// `ballotctl`: Ballot's command line client, on the Swift client
/// (`Sources/Client`), for Ballot and for etcd alike. etcdctl's commands
/// where they exist, with balancing, consistency levels and fencing tokens
/// on top.
@main
struct BallotCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ballotctl",
        abstract: "A client for Ballot (and etcd's v3 API).",
        subcommands: [Get.self, Put.self, Del.self, Txn.self, Watch.self, Lease.self, Lock.self, Elect.self, Member.self,
                      EndpointCommand.self, SnapshotCommand.self, Check.self])
}

/// What every command shares: where the members are and how to print.
struct GlobalOptions: ParsableArguments {
    @Option(help: "Members' client URLs, comma-separated (host:port or http://host:port).")
    var endpoints = "127.0.0.1:2379"

    @Option(help: "How calls pick a member: round-robin, random, leader or least-outstanding.")
    var balancing = "round-robin"

    @Option(name: [.customShort("w"), .customLong("write-out")], help: "Output: simple, json or table.")
    var output = OutputFormat.simple

    @Option(help: "Seconds one attempt of a call may take.")
    var commandTimeout = 5

    func configuration() throws -> ClientConfiguration {
        let policy: BalancingPolicy
        switch balancing {
        case "round-robin": policy = .roundRobin
        case "random": policy = .random
        case "leader": policy = .leaderPreferred
        case "least-outstanding": policy = .leastOutstanding
        default: throw ValidationError("--balancing \(balancing): round-robin, random, leader or least-outstanding")
        }
        guard (1...600).contains(commandTimeout) else { throw ValidationError("--command-timeout is 1 to 600 seconds") }
        var configuration = try ClientConfiguration(endpoints: endpoints, balancing: policy)
        configuration.requestTimeout = .seconds(commandTimeout)
        return configuration
    }

    /// Run `body` with a client; a member's refusal is printed as etcdctl
    /// prints it ("Error: ...") with status 1.
    func withClient(_ body: @Sendable (BallotClient) async throws -> Void) async throws {
        let configuration = try configuration()
        do {
            try await BallotClient.with(configuration, body)
        } catch let error as ExitCode {
            throw error
        } catch {
            FileHandle.standardError.write(Data("Error: \(Output.describe(error))\n".utf8))
            throw ExitCode.failure
        }
    }
}

/// `--consistency` and its bounds, for the commands that read.
struct ConsistencyOptions: ParsableArguments {
    @Option(help: "linearizable, lease, serializable (or s), or bounded.")
    var consistency = "linearizable"

    @Option(help: "With --consistency bounded: the most milliseconds a read may be stale.")
    var maxStalenessMs: UInt64?

    @Option(help: "With --consistency bounded: the most revisions a read may be behind.")
    var maxStalenessRevisions: UInt64?

    func level() throws -> ReadConsistency {
        switch consistency {
        case "linearizable", "l": return .linearizable
        case "lease": return .lease
        case "serializable", "s": return .serializable
        case "bounded":
            guard maxStalenessMs != nil || maxStalenessRevisions != nil else {
                throw ValidationError("--consistency bounded needs --max-staleness-ms or --max-staleness-revisions")
            }
            return .bounded(maxStaleness: maxStalenessMs.map { .milliseconds(Int64($0)) }, maxRevisions: maxStalenessRevisions)
        default:
            throw ValidationError("--consistency \(consistency): linearizable, lease, serializable or bounded")
        }
    }
}
