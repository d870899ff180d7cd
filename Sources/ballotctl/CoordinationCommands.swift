import ArgumentParser
import Client
import Foundation

struct Lease: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Grant, revoke, inspect and keep alive leases.",
                                                    subcommands: [Grant.self, Revoke.self, TimeToLive.self, KeepAlive.self])

    struct Grant: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        @Argument(help: "Seconds.") var ttl: Int64
        func run() async throws {
            try await global.withClient { [self] client in
                let id = try await client.grantLease(ttl: ttl)
                print("lease \(Output.hex(UInt64(bitPattern: id))) granted with TTL(\(ttl)s)")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The lease ID, hex.") var id: String
        func run() async throws {
            let lease = try LeaseID.parse(id)
            try await global.withClient { client in
                try await client.revokeLease(lease)
                print("lease \(id) revoked")
            }
        }
    }

    struct TimeToLive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "timetolive")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The lease ID, hex.") var id: String
        func run() async throws {
            let lease = try LeaseID.parse(id)
            try await global.withClient { [id] client in
                let ttl = try await client.timeToLive(lease)
                print(ttl < 0 ? "lease \(id) already expired" : "lease \(id) remaining(\(ttl)s)")
            }
        }
    }

    struct KeepAlive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "keep-alive", abstract: "Keep a new lease alive until interrupted (a session).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "The lease's TTL in seconds.") var ttl: Int64 = Session.ttlDefault
        func run() async throws {
            let interrupt = Interrupt()
            try await global.withClient { [ttl] client in
                let session = try await Session.start(on: client, ttl: ttl)
                print("lease \(Output.hex(UInt64(bitPattern: session.lease))) kept alive with TTL(\(ttl)s)")
                fflush(nil)
                if await interrupt.hold(while: { !session.isExpired }) {
                    try await session.close()
                    return
                }
                throw ExitCode.failure
            }
        }
    }
}

enum LeaseID {
    static func parse(_ text: String) throws -> Int64 {
        guard let id = UInt64(text, radix: 16) else { throw ValidationError("\(text) is not a hex lease ID") }
        return Int64(bitPattern: id)
    }
}

/// `ballotctl lock NAME [COMMAND...]`: wait for the lock, print its key and
/// fencing token, then run COMMAND with them in its environment
/// (BALLOT_LOCK_KEY, BALLOT_FENCING_TOKEN; etcdctl's ETCD_LOCK_KEY too) and
/// release the lock when it ends, or hold the lock until interrupted (^C
/// or SIGTERM releases it at once).
struct Lock: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Acquire a lock, with its fencing token.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The session's TTL in seconds.") var ttl: Int64 = Session.ttlDefault
    @Argument var name: String
    @Argument(parsing: .captureForPassthrough) var command: [String] = []

    func run() async throws {
        // Only a hold is ended by a signal: a command run under the lock
        // gets the terminal's signals itself (an ignored signal would stay
        // ignored in it).
        let interrupt = command.isEmpty ? Interrupt() : nil
        try await global.withClient { [self] client in
            let session = try await Session.start(on: client, ttl: ttl)
            let mutex = Mutex(name, session: session)
            let acquired: Int64?
            if let interrupt {
                acquired = try await interrupt.unlessSignalled { try await mutex.lock() }
            } else {
                acquired = try await mutex.lock()
            }
            guard let token = acquired else {
                try await session.close()
                return
            }
            let key = mutex.key ?? ""
            if let interrupt {
                print(key)
                print("fencing token: \(token)")
                fflush(nil)
                if await interrupt.hold(while: { !session.isExpired }) {
                    try await mutex.unlock()
                    try await session.close()
                    return
                }
                FileHandle.standardError.write(Data("Error: the lock's session expired\n".utf8))
                throw ExitCode.failure
            }
            let status = try Self.runHolding(command, environment: ["BALLOT_LOCK_KEY": key, "ETCD_LOCK_KEY": key, "BALLOT_FENCING_TOKEN": "\(token)"])
            try await mutex.unlock()
            try await session.close()
            if status != 0 { throw ExitCode(status) }
        }
    }

    static func runHolding(_ command: [String], environment: [String: String]) throws -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        try process.run()
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// `ballotctl elect NAME PROPOSAL`: campaign, print the fencing token once
/// elected, and lead until interrupted; `--listen` prints each leader.
struct Elect: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Campaign in an election, or observe one.")
    @OptionGroup var global: GlobalOptions
    @Option(help: "The session's TTL in seconds.") var ttl: Int64 = Session.ttlDefault
    @Flag(help: "Print each leader's proposal as leadership changes.") var listen = false
    @Argument var name: String
    @Argument var proposal: String?

    func run() async throws {
        if !listen && proposal == nil { throw ValidationError("a campaign needs a PROPOSAL (or --listen)") }
        let interrupt = Interrupt()
        try await global.withClient { [self] client in
            let session = try await Session.start(on: client, ttl: ttl)
            let election = Election(name, session: session)
            if listen {
                _ = try await interrupt.unlessSignalled {
                    for try await leader in election.observe() {
                        print(leader)
                        fflush(nil)
                    }
                }
                try await session.close()
                return
            }
            let value = proposal!
            guard let token = try await interrupt.unlessSignalled({ try await election.campaign(value) }) else {
                try await session.close()
                return
            }
            print(value)
            print("fencing token: \(token)")
            fflush(nil)
            if await interrupt.hold(while: { !session.isExpired }) {
                try await election.resign()
                try await session.close()
                return
            }
            FileHandle.standardError.write(Data("Error: the election's session expired\n".utf8))
            throw ExitCode.failure
        }
    }
}
