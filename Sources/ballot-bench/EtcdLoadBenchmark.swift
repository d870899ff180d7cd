import ArgumentParser
import EtcdAPI
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import Histogram
import Synchronization

/// Load against any server speaking etcd's v3 API (Ballot or etcd itself),
/// so the two are measured by the same client in the same run: puts,
/// linearizable and serializable ranges, and watch fan-out. Latencies go
/// into HdrHistograms; a progress line prints every second.
struct EtcdLoadBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "etcd",
        abstract: "Put, range and watch load against etcd-API endpoints (Ballot or etcd).")

    enum Workload: String, ExpressibleByArgument, CaseIterable {
        case put, range, rangeSerializable = "range-serializable", watch, lock
    }

    /// A range's consistency: etcd's two, or Ballot's metadata for the
    /// others (an etcd server ignores it and serves linearizable reads).
    enum Consistency: String, ExpressibleByArgument, CaseIterable {
        case linearizable, serializable, lease, bounded
    }

    @Option(help: "Comma-separated host:port client endpoints.") var endpoints = "127.0.0.1:2379"
    @Option(help: "put, range, range-serializable, watch or lock (every client locks and unlocks one name).") var workload = Workload.put
    @Option(help: "For range: linearizable, serializable, lease or bounded (1 s).") var consistency = Consistency.linearizable
    @Option(help: "Concurrent clients (for watch: watchers).") var clients = 64
    @Option(help: "gRPC connections the clients share.") var connections = 8
    @Option(help: "Value size in bytes.") var valueBytes = 256
    @Option(help: "Distinct keys written and read.") var keys = 10_000
    @Option(help: "Seconds of load.") var seconds = 10.0
    @Option(help: "A name for the result line (e.g. ballot, etcd).") var label = "server"

    /// Calls wait for their connection instead of failing while it is set up.
    static let callOptions: CallOptions = {
        var options = CallOptions.defaults
        options.waitForReady = true
        options.timeout = .seconds(30)
        return options
    }()

    /// Latencies in microseconds, up to a minute, to three digits.
    static func newHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    }

    static let populateAttempts = 5
    static let clientsRange = 1...10_000
    static let connectionsRange = 1...256

    func validate() throws {
        guard Self.clientsRange.contains(clients) else { throw ValidationError("--clients takes \(Self.clientsRange)") }
        guard Self.connectionsRange.contains(connections) else { throw ValidationError("--connections takes \(Self.connectionsRange)") }
        guard (1...(1 << 20)).contains(valueBytes) else { throw ValidationError("--value-bytes takes 1...1048576") }
        guard keys >= 1, seconds > 0 else { throw ValidationError("--keys and --seconds must be positive") }
    }

    func run() async throws {
        let targets = try endpoints.split(separator: ",").map { item -> (String, Int) in
            let parts = item.split(separator: ":")
            guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("endpoint '\(item)' is not host:port") }
            return (String(parts[0]), port)
        }
        let grpcClients = try (0..<connections).map { i in
            let (host, port) = targets[i % targets.count]
            return GRPCClient(transport: try HTTP2ClientTransport.Posix(
                target: .ipv4(address: host, port: port), transportSecurity: .plaintext,
                config: .defaults { $0.http2.targetWindowSize = 65_535 }))
        }
        let stats = LoadStats()
        try await withThrowingDiscardingTaskGroup { group in
            for client in grpcClients { group.addTask { try await client.runConnections() } }
            if workload == .range || workload == .rangeSerializable { try await populate(grpcClients[0]) }
            let histogram = try await measure(grpcClients, stats)
            report(histogram, stats)
            for client in grpcClients { client.beginGracefulShutdown() }
        }
    }

    /// Write every key once so reads find something.
    func populate(_ client: GRPCClient<HTTP2ClientTransport.Posix>) async throws {
        let kv = Etcdserverpb_KV.Client(wrapping: client)
        let value = Data(repeating: 0x62, count: valueBytes)
        try await withThrowingDiscardingTaskGroup { group in
            for worker in 0..<16 {
                group.addTask {
                    for k in stride(from: worker, to: keys, by: 16) {
                        var put = Etcdserverpb_PutRequest()
                        put.key = Data("bench/\(k)".utf8)
                        put.value = value
                        for attempt in 1...Self.populateAttempts {
                            do {
                                _ = try await kv.put(put, options: Self.callOptions)
                                break
                            } catch where attempt < Self.populateAttempts {
                                try await Task.sleep(for: .milliseconds(50))
                            }
                        }
                    }
                }
            }
        }
    }

    func measure(_ grpcClients: [GRPCClient<HTTP2ClientTransport.Posix>], _ stats: LoadStats) async throws -> Histogram<UInt64> {
        let deadline = ContinuousClock.now + .seconds(seconds)
        let progress = Task {
            var last = 0
            var elapsed = 0
            while !Task.isCancelled {
                try await Task.sleep(for: .seconds(1))
                elapsed += 1
                let done = stats.completed.load(ordering: .relaxed)
                print("[\(label) \(workload.rawValue)] \(elapsed)s/\(Int(seconds))s: \(done - last) ops/s, \(stats.errors.load(ordering: .relaxed)) errors")
                fflush(nil)
                last = done
            }
        }
        defer { progress.cancel() }
        var merged = EtcdLoadBenchmark.newHistogram()
        if workload == .watch {
            merged.add(try await watchFanOut(grpcClients, stats, until: deadline))
            return merged
        }
        if workload == .lock {
            merged.add(try await lockContention(grpcClients, stats, until: deadline))
            return merged
        }
        try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
            for c in 0..<clients {
                let kv = Etcdserverpb_KV.Client(wrapping: grpcClients[c % grpcClients.count])
                group.addTask {
                    var histogram = EtcdLoadBenchmark.newHistogram()
                    var random = SystemRandomNumberGenerator()
                    let value = Data(repeating: UInt8(c & 0x7F), count: valueBytes)
                    while ContinuousClock.now < deadline {
                        let key = Data("bench/\(Int.random(in: 0..<keys, using: &random))".utf8)
                        let started = ContinuousClock.now
                        do {
                            switch workload {
                            case .put:
                                var put = Etcdserverpb_PutRequest()
                                put.key = key
                                put.value = value
                                _ = try await kv.put(put, options: Self.callOptions)
                            case .range, .rangeSerializable:
                                var range = Etcdserverpb_RangeRequest()
                                range.key = key
                                range.serializable = workload == .rangeSerializable || consistency == .serializable
                                _ = try await kv.range(range, metadata: readMetadata, options: Self.callOptions)
                            case .watch, .lock:
                                break
                            }
                            _ = histogram.record(UInt64((ContinuousClock.now - started) / .microseconds(1)))
                            stats.completed.add(1, ordering: .relaxed)
                        } catch {
                            stats.errors.add(1, ordering: .relaxed)
                            stats.note(error)
                            // A failing server must not turn the client into a busy loop.
                            try? await Task.sleep(for: .milliseconds(10))
                        }
                    }
                    return histogram
                }
            }
            for try await histogram in group { merged.add(histogram) }
        }
        return merged
    }

    /// `clients` watchers on one prefix; one writer puts as fast as it is
    /// acknowledged, stamping each value with the time of the put. Latency is
    /// put-to-delivery, counted on every watcher.
    func watchFanOut(_ grpcClients: [GRPCClient<HTTP2ClientTransport.Posix>], _ stats: LoadStats,
                     until deadline: ContinuousClock.Instant) async throws -> Histogram<UInt64> {
        let origin = ContinuousClock.now
        return try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
            for c in 0..<clients {
                let watch = Etcdserverpb_Watch.Client(wrapping: grpcClients[c % grpcClients.count])
                group.addTask {
                    var histogram = EtcdLoadBenchmark.newHistogram()
                    var counted = false
                    // A stream the transport drops is opened again (and counted as an error).
                    while ContinuousClock.now < deadline {
                        let first = !counted
                        do {
                            histogram.add(try await watch.watch(options: Self.callOptions, requestProducer: { writer in
                                var create = Etcdserverpb_WatchRequest()
                                create.createRequest.key = Data("watch/".utf8)
                                create.createRequest.rangeEnd = Data("watch0".utf8)
                                try await writer.write(create)
                                try? await Task.sleep(until: deadline + .seconds(2))
                            }, onResponse: { response in
                                var histogram = EtcdLoadBenchmark.newHistogram()
                                do {
                                    for try await message in response.messages {
                                        if message.created && first { stats.watchers.add(1, ordering: .relaxed) }
                                        for event in message.events {
                                            let sent = event.kv.value.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * $1.offset) }
                                            let now = UInt64((ContinuousClock.now - origin) / .microseconds(1))
                                            _ = histogram.record(now > sent ? now - sent : 0)
                                            stats.completed.add(1, ordering: .relaxed)
                                        }
                                        if ContinuousClock.now >= deadline { break }
                                    }
                                } catch {
                                    stats.errors.add(1, ordering: .relaxed)
                                    stats.note(error)
                                }
                                return histogram
                            }))
                        } catch {
                            stats.errors.add(1, ordering: .relaxed)
                            stats.note(error)
                            try? await Task.sleep(for: .milliseconds(10))
                        }
                        counted = true
                    }
                    return histogram
                }
            }
            // The writer starts once every watcher exists.
            let kv = Etcdserverpb_KV.Client(wrapping: grpcClients[0])
            while stats.watchers.load(ordering: .relaxed) < clients && ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            var sequence = 0
            while ContinuousClock.now < deadline {
                let stamp = UInt64((ContinuousClock.now - origin) / .microseconds(1))
                var put = Etcdserverpb_PutRequest()
                put.key = Data("watch/\(sequence % keys)".utf8)
                put.value = Data((0..<8).map { UInt8(truncatingIfNeeded: stamp >> (8 * $0)) }) + Data(repeating: 0x77, count: max(0, valueBytes - 8))
                do { _ = try await kv.put(put, options: Self.callOptions) } catch { stats.errors.add(1, ordering: .relaxed) }
                sequence += 1
            }
            var merged = EtcdLoadBenchmark.newHistogram()
            for try await histogram in group { merged.add(histogram) }
            stats.writes.store(sequence, ordering: .relaxed)
            return merged
        }
    }

    /// Ballot's metadata for the range's consistency (none for etcd's levels).
    var readMetadata: Metadata {
        var metadata = Metadata()
        switch consistency {
        case .linearizable, .serializable: break
        case .lease: metadata.addString("lease", forKey: BallotMetadata.consistency)
        case .bounded:
            metadata.addString("bounded", forKey: BallotMetadata.consistency)
            metadata.addString("1000", forKey: BallotMetadata.maxStalenessMilliseconds)
        }
        return metadata
    }

    /// Every client, with a lease of its own, locks one name (etcd's Lock
    /// service) and unlocks it at once, as fast as it can: the histogram
    /// holds each lock call's time (most of it waiting for the holder),
    /// `stats.handOvers` the time from one holder's unlock request to the
    /// next holder's lock answer, the lock's hand-over latency.
    func lockContention(_ grpcClients: [GRPCClient<HTTP2ClientTransport.Posix>], _ stats: LoadStats,
                        until deadline: ContinuousClock.Instant) async throws -> Histogram<UInt64> {
        let origin = ContinuousClock.now
        return try await withThrowingTaskGroup(of: Histogram<UInt64>.self) { group in
            for c in 0..<clients {
                let connection = grpcClients[c % grpcClients.count]
                group.addTask {
                    var histogram = EtcdLoadBenchmark.newHistogram()
                    var grant = Etcdserverpb_LeaseGrantRequest()
                    grant.ttl = 60
                    let lease = try await Etcdserverpb_Lease.Client(wrapping: connection).leaseGrant(grant, options: Self.callOptions).id
                    let locks = V3lockpb_Lock.Client(wrapping: connection)
                    while ContinuousClock.now < deadline {
                        var lock = V3lockpb_LockRequest()
                        lock.name = Data("bench-lock".utf8)
                        lock.lease = lease
                        let started = ContinuousClock.now
                        do {
                            let key = try await locks.lock(lock, options: Self.callOptions).key
                            let now = UInt64((ContinuousClock.now - origin) / .microseconds(1))
                            _ = histogram.record(UInt64((ContinuousClock.now - started) / .microseconds(1)))
                            let previous = stats.lastRelease.load(ordering: .acquiring)
                            if previous > 0 { stats.recordHandOver(now > previous ? now - previous : 0) }
                            var unlock = V3lockpb_UnlockRequest()
                            unlock.key = key
                            // Before the unlock goes out: no waiter can be granted the lock earlier.
                            stats.lastRelease.store(UInt64((ContinuousClock.now - origin) / .microseconds(1)), ordering: .releasing)
                            _ = try await locks.unlock(unlock, options: Self.callOptions)
                            stats.completed.add(1, ordering: .relaxed)
                        } catch {
                            stats.errors.add(1, ordering: .relaxed)
                            stats.note(error)
                            try? await Task.sleep(for: .milliseconds(10))
                        }
                    }
                    return histogram
                }
            }
            var merged = EtcdLoadBenchmark.newHistogram()
            for try await histogram in group { merged.add(histogram) }
            return merged
        }
    }

    func report(_ histogram: Histogram<UInt64>, _ stats: LoadStats) {
        func ms(_ p: Double) -> String { String(format: "%.2f", Double(histogram.valueAtPercentile(p)) / 1000) }
        let count = histogram.totalCount
        let rate = Double(count) / seconds
        var line = "RESULT label=\(label) workload=\(workload.rawValue) clients=\(clients) value_bytes=\(valueBytes)"
        line += " ops=\(count) ops_per_s=\(Int(rate)) p50_ms=\(ms(50)) p90_ms=\(ms(90)) p99_ms=\(ms(99)) p999_ms=\(ms(99.9))"
        line += " errors=\(stats.errors.load(ordering: .relaxed))"
        if workload == .watch { line += " writes=\(stats.writes.load(ordering: .relaxed))" }
        if workload == .range { line += " consistency=\(consistency.rawValue)" }
        if workload == .lock {
            let handOvers = stats.handOvers.withLock { $0 }
            func handOver(_ p: Double) -> String { String(format: "%.2f", Double(handOvers.valueAtPercentile(p)) / 1000) }
            line += " handover_p50_ms=\(handOver(50)) handover_p99_ms=\(handOver(99))"
        }
        print(line)
        for (message, count) in stats.errorKinds.withLock({ $0 }).sorted(by: { $0.value > $1.value }) {
            print("  error x\(count): \(message)")
        }
    }
}

final class LoadStats: Sendable {
    /// Distinct error messages and how often each came, for the report.
    let errorKinds = Mutex<[String: Int]>([:])

    func note(_ error: any Error) {
        let message = (error as? RPCError).map { "\($0.code): \($0.message)" } ?? "\(error)"
        errorKinds.withLock { $0[message, default: 0] += 1 }
    }

    let completed = Atomic<Int>(0)
    let errors = Atomic<Int>(0)
    let writes = Atomic<Int>(0)
    let watchers = Atomic<Int>(0)
    /// Lock workload: when the last holder sent its unlock (µs since
    /// the load began; 0: none yet), and the hand-over times.
    let lastRelease = Atomic<UInt64>(0)
    let handOvers = Mutex(EtcdLoadBenchmark.newHistogram())

    func recordHandOver(_ microseconds: UInt64) {
        handOvers.withLock { _ = $0.record(microseconds) }
    }
}
