import ArgumentParser
import CMallocTuning
import Foundation
import Logging
@_spi(FaultInjection) import Server

/// The Ballot server. A member takes etcd 3.4's command line (its flags and
/// `ETCD_*` variables, read the way etcd reads them), so an etcd member's
/// command line or unit file starts a Ballot member unchanged; `ballot dev`
/// starts a local cluster.
@main
enum Ballot {
    static func main() async {
        raiseOpenFileLimit()
        returnLargeAllocationsToTheSystem()
        var arguments = Array(CommandLine.arguments.dropFirst())
        switch arguments.first {
        case "dev":
            await Dev.main(Array(arguments.dropFirst()))
            return
        case "snapshot":
            Snapshot.main(Array(arguments.dropFirst()))
            return
        case "serve":
            arguments.removeFirst()
        default:
            break
        }
        exit(await runMember(arguments: arguments, environment: ProcessInfo.processInfo.environment))
    }

    /// Every client connection and watch stream holds a descriptor: take
    /// the hard limit on open files as the soft one, as Go's runtime does
    /// for etcd at start (a soft limit of 1,024 would refuse clients long
    /// before memory or the operator's hard limit does).
    static func raiseOpenFileLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = limit.rlim_max
        _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }

    /// Large allocations (a value of 128 KiB or more, in a request, a log
    /// entry, a watch event) straight from the kernel and back to it when
    /// freed: glibc starts with that threshold but raises it each time such
    /// a block is freed, after which large values come from the heap, and a
    /// burst of them, interleaved with the log's long-lived entries, leaves
    /// the heap fragmented. Measured (`AbuseTests`: 1,500 values of 128 KiB
    /// from 3 clients): one member kept about 65 MiB more than the others
    /// in 2 of 3 runs with the moving threshold (the test allows 64 MiB
    /// more, for the member holding a stalled watch), in none of 5 with it
    /// fixed. The cost is a map and an unmap per such block. An operator's
    /// own `MALLOC_MMAP_THRESHOLD_` is left as set.
    static func returnLargeAllocationsToTheSystem() {
        guard ProcessInfo.processInfo.environment["MALLOC_MMAP_THRESHOLD_"] == nil else { return }
        _ = ballot_fix_mmap_threshold(largeAllocationBytes)
    }

    /// glibc's own initial threshold (its `DEFAULT_MMAP_THRESHOLD_MIN`), fixed.
    static let largeAllocationBytes: Int32 = 128 * 1024

    static func runMember(arguments: [String], environment: [String: String]) async -> Int32 {
        let flags: EtcdCommandLine
        let config: ServerConfig
        do {
            flags = try EtcdCommandLine(arguments: arguments, environment: environment)
            switch flags.request {
            case .help:
                print(EtcdCommandLine.usage)
                return 0
            case .version:
                print("ballot Version: \(BallotVersion.current)\netcd API Version: 3.4")
                return 0
            case .run:
                var member = try ServerConfig(etcd: flags).validated()
                if let failAfter = environment[ServerConfig.faultEnvironmentVariable].flatMap({ Int($0) }) {
                    member.failWALSyncsAfter = failAfter
                }
                member.keepsPowerCutImage = environment[ServerConfig.powerCutImageVariable] == "1"
                if let name = environment[ServerConfig.injectedBugVariable] {
                    guard let bug = ServerBug(rawValue: name) else {
                        throw ConfigError.invalid("\(ServerConfig.injectedBugVariable): no such bug \(name)")
                    }
                    member.injectedBug = bug
                }
                config = member
            }
        } catch {
            // etcd's words for a bad command line, and its exit status.
            FileHandle.standardError.write(Data("ballot: \(error)\nRun 'ballot --help' for the flags.\n".utf8))
            return 2
        }
        LoggingSystem.bootstrap { label in
            var handler = config.logToStandardOutput ? StreamLogHandler.standardOutput(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = config.logLevel
            return handler
        }
        var logger = Logger(label: "ballot")
        logger[metadataKey: "member"] = "\(config.name)"
        for notice in flags.notices { logger.warning("\(notice)") }
        let server: BallotServer
        do {
            server = try await BallotServer.open(config: config, logger: logger)
        } catch {
            logger.critical("refusing to start: \(error)")
            return 2
        }
        let task = Task { try await server.run() }
        let signals = [SIGINT, SIGTERM].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                logger.info("signal received; stopping", metadata: ["signal": "\(number)"])
                task.cancel()
            }
            source.resume()
            return source
        }
        defer { signals.forEach { $0.cancel() } }
        do {
            try await task.value
            return 0
        } catch {
            logger.critical("stopped: \(error)")
            return 1
        }
    }
}

enum BallotVersion {
    static let current = "0.1.0"
}
