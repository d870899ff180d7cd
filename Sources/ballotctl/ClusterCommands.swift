import ArgumentParser
import Client
import EtcdAPI
import Foundation

struct Member: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The cluster's members.", subcommands: [List.self])

    struct List: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            try await global.withClient { [self] client in
                let response = try await client.memberList()
                let rows = response.members.map { m in
                    [Output.hex(m.id), m.name.isEmpty ? "unstarted" : "started", m.name, m.peerUrls.joined(separator: ","),
                     m.clientUrls.joined(separator: ","), m.isLearner ? "true" : "false"]
                }
                switch global.output {
                case .json: print(try Output.json(response))
                case .table: print(Output.table(["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"], rows))
                case .simple: for row in rows { print(row.joined(separator: ", ")) }
                }
            }
        }
    }
}

struct EndpointCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "endpoint", abstract: "Each endpoint's status or health.",
                                                    subcommands: [Status.self, Health.self])

    struct Status: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            try await global.withClient { [self] client in
                var rows: [[String]] = []
                var failed = false
                for (index, endpoint) in client.configuration.endpoints.enumerated() {
                    do {
                        let status = try await client.status(at: index)
                        if global.output == .json {
                            print(try Output.json(status))
                            continue
                        }
                        rows.append(["\(endpoint)", Output.hex(status.header.memberID), status.version, Output.bytes(UInt64(max(0, status.dbSize))),
                                     status.leader == status.header.memberID ? "true" : "false", status.isLearner ? "true" : "false",
                                     "\(status.raftTerm)", "\(status.raftIndex)", "\(status.raftAppliedIndex)", status.errors.joined(separator: ", ")])
                    } catch {
                        failed = true
                        FileHandle.standardError.write(Data("Failed to get the status of endpoint \(endpoint) (\(Output.describe(error)))\n".utf8))
                    }
                }
                let header = ["ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "IS LEARNER", "RAFT TERM", "RAFT INDEX", "RAFT APPLIED INDEX", "ERRORS"]
                if global.output == .table { print(Output.table(header, rows)) }
                if global.output == .simple { for row in rows { print(row.joined(separator: ", ")) } }
                if failed { throw ExitCode.failure }
            }
        }
    }

    struct Health: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        func run() async throws {
            try await global.withClient { [self] client in
                var rows: [[String]] = []
                for (index, endpoint) in client.configuration.endpoints.enumerated() {
                    let start = ContinuousClock.now
                    let problem = await client.unhealthy(at: index)
                    let took = ContinuousClock.now - start
                    rows.append(["\(endpoint)", problem == nil ? "true" : "false", "\(took)", problem ?? ""])
                }
                switch global.output {
                case .table: print(Output.table(["ENDPOINT", "HEALTH", "TOOK", "ERROR"], rows))
                case .json:
                    let objects = rows.map { ["endpoint": $0[0], "health": $0[1], "took": $0[2], "error": $0[3]] }
                    print(String(decoding: try JSONSerialization.data(withJSONObject: objects, options: [.sortedKeys]), as: UTF8.self))
                case .simple:
                    for row in rows {
                        print(row[1] == "true" ? "\(row[0]) is healthy: successfully committed proposal: took = \(row[2])"
                                               : "\(row[0]) is unhealthy: failed to commit proposal: \(row[3])")
                    }
                }
                if rows.contains(where: { $0[1] != "true" }) { throw ExitCode.failure }
            }
        }
    }
}
