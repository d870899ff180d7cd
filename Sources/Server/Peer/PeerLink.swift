import Consensus
import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import StateMachine

/// One peer as this member dials it: a queue of consensus messages, the
/// requests waiting for answers, and the one TCP connection that carries
/// both, redialled with backoff while the link lives.
///
/// Messages go from the node's event loop straight to the connection,
/// which lives on the same loop: `send` queues them and, if the queue was
/// empty, schedules one flush there, after the node's turn, that writes
/// everything queued by then as frames. No task and no thread hand-off
/// stand in between.
final class PeerLink: @unchecked Sendable {
    let id: NodeID
    let address: HostPort
    let queue = OutboundQueue()
    private let stopped = WakeFlag()

    private let lock = NSLock()
    /// The connection while it is up (after its hello went out).
    private var channel: Channel?
    private var nextRequestID: UInt64 = 0
    /// Requests waiting for answers, by id (sent, or in `unsent`).
    private var inFlight: [UInt64: Request] = [:]
    /// Requests made while no connection was up; sent once one is.
    private var unsent: [(id: UInt64, frame: PeerFrame)] = []
    /// The last dial failed (refused, unanswered, or the peer refused this
    /// member) and no connection has come up since: a request now fails at
    /// once as not sent, rather than wait out its timeout for a peer that
    /// is likely gone (a killed leader), so its caller can take it to the
    /// next leader (`Node.propose`).
    private var unreachable = false
    /// Connections that came up, to tell a failed dial from a broken connection.
    private var connections = 0
    /// The up connection's counters: frames delivered (for the redial
    /// backoff) and bytes sent to this peer (resolved at the first bytes:
    /// etcd shows a peer's counter only once it moved).
    private var delivered: WakeFlag?
    private var sentBytes: (@Sendable (Int) -> Void)?
    private var traffic: PeerTraffic?

    init(id: NodeID, address: HostPort) {
        self.id = id
        self.address = address
    }

    /// Close the connection and end `run()`.
    func stop() {
        _ = stopped.raise()
        lock.withLock { channel }?.close(promise: nil)
    }

    /// How soon a flush that found the connection full looks again.
    static let unwritableRetry = TimeAmount.milliseconds(5)

    /// Queue encoded consensus messages for this peer. Dropped (oldest
    /// first) when the queue is full; held while no connection is up.
    /// On the connection's own event loop (the node's turn) they are
    /// written at once: a leader's appends leave before its turn goes on
    /// to the fsync, so the followers' fsyncs overlap the leader's.
    func send(_ encoded: [[UInt8]]) {
        var wasEmpty = false
        for message in encoded where queue.push(message) { wasEmpty = true }
        guard let channel = lock.withLock({ channel }) else { return }
        if channel.eventLoop.inEventLoop {
            flush(channel)
        } else if wasEmpty {
            // No flush is pending for the queue: schedule the one that takes it.
            channel.eventLoop.execute { self.flush(channel) }
        }
    }

    /// On `channel`'s event loop: write everything queued, in frames of at
    /// most the batch target, then flush once. A failed write closes the
    /// connection, which redials. While the connection cannot take more
    /// (a peer that stopped reading), messages stay in the bounded queue,
    /// which drops the oldest, and the flush looks again a moment later:
    /// nothing piles up in the channel's own unbounded buffer.
    private func flush(_ channel: Channel) {
        // A connection that went away leaves the queue to the next one.
        guard lock.withLock({ self.channel === channel }) else { return }
        guard channel.isWritable else {
            channel.eventLoop.scheduleTask(in: Self.unwritableRetry) { self.flush(channel) }
            return
        }
        let items = queue.takeAll()
        guard !items.isEmpty else { return }
        let (delivered, counted): (WakeFlag?, (@Sendable (Int) -> Void)?) = lock.withLock {
            // Resolved at the first bytes: etcd shows a peer's counter only once it moved.
            if sentBytes == nil { sentBytes = traffic?.sentTo(id) }
            return (self.delivered, sentBytes)
        }
        for batch in Self.batches(items) {
            let promise = channel.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenFailure { _ in channel.close(promise: nil) }
            channel.write(PeerFrame.messages(batch), promise: promise)
            counted?(PeerTraffic.frameBytes(batch))
        }
        channel.flush()
        _ = delivered?.raise()
    }

    /// Stop, but give requests already out on the connection `grace` to be
    /// answered first: a member removing itself as leader still answers
    /// the member that forwarded the removal.
    func stop(afterAnswers grace: TimeAmount) {
        let waiting: Bool = lock.withLock { !inFlight.isEmpty }
        let current: (any Channel)? = lock.withLock { channel }
        guard waiting, let current else { return stop() }
        current.eventLoop.scheduleTask(in: grace) { self.stop() }
    }

    /// Dial, serve the connection until it breaks, dial again; until stopped.
    func run(hello: @escaping @Sendable () -> PeerFrame, secret: PeerSecret?, logger: Logger, traffic: PeerTraffic,
             dial: @escaping @Sendable (HostPort) async throws -> PeerFrame.Connection,
             onRemoved: @escaping @Sendable () -> Void) async {
        var backoff = PeerTransport.backoffInitialSeconds
        var lastRefusal = ""
        while !Task.isCancelled && !stopped.isRaised {
            // Raised once this connection carries a frame either way: a
            // connection that worked and then broke redials at once, not after
            // the backoff that earlier failures built up.
            let delivered = WakeFlag()
            // A refusal backs off even when the connection took frames:
            // they were queued, not delivered.
            var refused = false
            let connectionsBefore = lock.withLock { connections }
            do {
                let connection = try await dial(address)
                try await serve(connection, hello: hello(), secret: secret, delivered: delivered, traffic: traffic)
            } catch let refusal as PeerRefused {
                refused = true
                if refusal.reason == .removed { onRemoved() }
                if refusal.message != lastRefusal {
                    logger.warning("a peer refused this member", metadata: ["peer": "\(id)", "address": "\(address)", "reason": "\(refusal.message)"])
                    lastRefusal = refusal.message
                }
            } catch let unproven as PeerUnproven {
                refused = true
                if "\(unproven)" != lastRefusal {
                    logger.warning("a peer did not prove itself; nothing sent to it", metadata: ["peer": "\(id)", "address": "\(address)", "reason": "\(unproven)"])
                    lastRefusal = "\(unproven)"
                }
            } catch let refusal as PeerCertificateRefused {
                // This member's rule refused the peer's certificate (the gate logged it).
                refused = true
                lastRefusal = "\(refusal)"
            } catch let failure as NIOSSLError {
                // A certificate the peer does not accept, or one this member
                // cannot verify: say so once, not on every redial.
                if "\(failure)" != lastRefusal {
                    logger.warning("TLS with a peer failed", metadata: ["peer": "\(id)", "address": "\(address)", "error": "\(failure)"])
                    lastRefusal = "\(failure)"
                }
            } catch {
                if delivered.isRaised && !stopped.isRaised {
                    logger.info("peer connection broke; redialling", metadata: ["peer": "\(id)", "address": "\(address)", "error": "\(error)"])
                }
            }
            if delivered.isRaised && !refused { backoff = PeerTransport.backoffInitialSeconds }
            if lock.withLock({ connections }) == connectionsBefore { markUnreachable() }
            if stopped.isRaised { break }
            try? await Task.sleep(for: .seconds(backoff))
            backoff = min(PeerTransport.backoffMaxSeconds, backoff * 2)
        }
    }

    private func serve(_ connection: PeerFrame.Connection, hello: PeerFrame, secret: PeerSecret?, delivered: WakeFlag,
                       traffic: PeerTraffic) async throws {
        try await connection.executeThenClose { inbound, outbound in
            var frames = inbound.makeAsyncIterator()
            // Nothing queued goes out before the listener proved itself.
            try await PeerHandshake.dial(hello, secret: secret, on: connection.channel, frames: &frames, outbound: outbound)
            connected(connection.channel, delivered: delivered, traffic: traffic)
            defer { disconnected() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    // A ping every keep-alive period measures the round trip;
                    // a peer that does not answer in time is redialled (the
                    // closed connection ends the reading below).
                    do {
                        while true {
                            try await Task.sleep(for: .seconds(PeerTransport.keepAliveSeconds))
                            let started = ContinuousClock.now
                            _ = try await self.ask(.ping, [], timeout: PeerTransport.keepAliveSeconds * 5)
                            traffic.roundTrip(ContinuousClock.now - started)
                        }
                    } catch {
                        connection.channel.close(promise: nil)
                    }
                }
                // Whichever ends first (the peer closed, a write failed, a
                // ping went unanswered, the link stopped) ends the connection.
                defer { group.cancelAll() }
                while let frame = try await frames.next() {
                    switch frame {
                    case .response(let id, let code, let message, let payload):
                        _ = delivered.raise()
                        self.finish(id, code == 0 ? .success(payload) : .failure(EtcdError(code: code, message: message)))
                    case .refused(let reason, let message):
                        throw PeerRefused(reason: reason, message: message)
                    default:
                        throw PeerProtocolError.unexpected(frame)
                    }
                }
                throw PeerProtocolError.connectionClosed
            }
        }
    }

    /// Split queued messages into frames of at most the batch target
    /// (each holding at least one message).
    static func batches(_ items: [[UInt8]]) -> [[[UInt8]]] {
        var batches: [[[UInt8]]] = []
        var current: [[UInt8]] = []
        var bytes = 0
        for item in items {
            if !current.isEmpty && bytes + 4 + item.count > PeerFrame.batchBytesTarget {
                batches.append(current)
                current = []
                bytes = 0
            }
            current.append(item)
            bytes += 4 + item.count
        }
        if !current.isEmpty { batches.append(current) }
        return batches
    }

    /// Send a request and wait for its answer's bytes. Waits for a
    /// connection if none is up; fails after `timeout` seconds, or when the
    /// connection it went out on breaks (it may or may not have been served).
    func ask(_ kind: PeerRequestKind, _ payload: [UInt8], timeout: Double) async throws -> [UInt8] {
        let id = newRequestID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // A cancellation that came first is seen under the lock, as the request is registered.
                ask(id, kind, payload, timeout: timeout, refusedIf: { Task.isCancelled }) { continuation.resume(with: $0) }
            }
        } onCancel: {
            finish(id, .failure(CancellationError()))
        }
    }

    /// `ask`, answered through `resume` on the thread that settles it (the
    /// connection's event loop, or a timer's): for callers with no task.
    func ask(_ kind: PeerRequestKind, _ payload: [UInt8], timeout: Double, then resume: @escaping @Sendable (Result<[UInt8], any Error>) -> Void) {
        ask(newRequestID(), kind, payload, timeout: timeout, refusedIf: { false }, then: resume)
    }

    private func newRequestID() -> UInt64 {
        lock.withLock {
            nextRequestID += 1
            return nextRequestID
        }
    }

    private func ask(_ id: UInt64, _ kind: PeerRequestKind, _ payload: [UInt8], timeout: Double, refusedIf cancelled: () -> Bool,
                     then resume: @escaping @Sendable (Result<[UInt8], any Error>) -> Void) {
        let frame = PeerFrame.request(id: id, kind: kind, payload: payload)
        // Registered before anything can finish it: the timer starts here.
        // Refused unregistered: cancelled, or no connection to wait for (`unreachable`).
        let registered: (refusal: (any Error)?, channel: Channel?) = lock.withLock {
            if cancelled() { return (CancellationError(), nil) }
            if channel == nil && unreachable { return (PeerProtocolError.notSent, nil) }
            // A timer on an event loop, not a task: one per request,
            // and a task would cost a thread hand-off of its own.
            let timer = (channel?.eventLoop ?? MultiThreadedEventLoopGroup.singleton.any())
                .scheduleTask(in: .milliseconds(Int64(timeout * 1000))) {
                    // Still waiting for a connection: it never went out.
                    self.finish(id) { unsent in .failure(unsent ? PeerProtocolError.notSent : PeerProtocolError.timedOut) }
                }
            inFlight[id] = Request(resume: resume, timer: timer)
            if channel == nil { unsent.append((id, frame)) }
            return (nil, channel)
        }
        if let refusal = registered.refusal { return resume(.failure(refusal)) }
        // A frame not written whole cannot be decoded, so not served.
        registered.channel?.writeAndFlush(frame).whenFailure { _ in self.finish(id, .failure(PeerProtocolError.notSent)) }
    }

    /// A request waiting for its answer, and the timer that gives up on it.
    private struct Request {
        let resume: @Sendable (Result<[UInt8], any Error>) -> Void
        let timer: Scheduled<Void>
    }

    private func finish(_ id: UInt64, _ result: Result<[UInt8], any Error>) {
        finish(id) { _ in result }
    }

    /// Finish a request with the result `decide` picks, knowing whether the
    /// request was still waiting for a connection (decided under the lock,
    /// so a connection that comes up meanwhile cannot send it after).
    private func finish(_ id: UInt64, _ decide: (_ unsent: Bool) -> Result<[UInt8], any Error>) {
        let (request, result): (Request?, Result<[UInt8], any Error>) = lock.withLock {
            let wasUnsent = unsent.contains { $0.id == id }
            unsent.removeAll { $0.id == id }
            return (inFlight.removeValue(forKey: id), decide(wasUnsent))
        }
        request?.timer.cancel()
        request?.resume(result)
    }

    private func connected(_ channel: Channel, delivered: WakeFlag, traffic: PeerTraffic) {
        let waiting = lock.withLock {
            self.channel = channel
            unreachable = false
            connections += 1
            self.delivered = delivered
            self.traffic = traffic
            defer { unsent = [] }
            return unsent
        }
        for (id, frame) in waiting {
            channel.writeAndFlush(frame).whenFailure { _ in self.finish(id, .failure(PeerProtocolError.notSent)) }
        }
        // Messages queued while no connection was up.
        channel.eventLoop.execute { self.flush(channel) }
    }

    /// A dial failed: the requests waiting for a connection fail as not
    /// sent, and so do new ones until a connection comes up.
    private func markUnreachable() {
        let waiting = lock.withLock {
            unreachable = true
            return unsent.map(\.id)
        }
        for id in waiting { finish(id, .failure(PeerProtocolError.notSent)) }
    }

    /// The connection ended: what went out on it will not be answered.
    private func disconnected() {
        let failed = lock.withLock {
            // Requests wait in `unsent` only while no connection is up.
            assert(unsent.isEmpty, "requests held back while connected")
            channel = nil
            delivered = nil
            defer { inFlight = [:] }
            return inFlight
        }
        for request in failed.values {
            request.timer.cancel()
            request.resume(.failure(PeerProtocolError.connectionClosed))
        }
    }
}

/// A peer's refusal to talk to this member (sent instead of serving it).
struct PeerRefused: Error, CustomStringConvertible {
    let reason: PeerRefusal
    let message: String
    var description: String { message }
}

enum PeerProtocolError: Error, CustomStringConvertible {
    /// No answer in time to a request that went out: it may have been served.
    case timedOut
    /// The request never went out whole: it was not served.
    case notSent
    /// The connection the request went out on closed: it may have been served.
    case connectionClosed
    case unexpected(PeerFrame)

    var description: String {
        switch self {
        case .timedOut: "the peer did not answer in time"
        case .notSent: "the request could not be sent to the peer"
        case .connectionClosed: "the peer connection closed before an answer"
        case .unexpected(let frame): "unexpected peer frame \(String("\(frame)".prefix(80)))"
        }
    }
}
