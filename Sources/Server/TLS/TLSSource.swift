import Foundation
import Logging
import NIOSSL
import Synchronization

/// One side's TLS contexts (clients or peers), kept current with their
/// files: etcd reads a member's certificate and key at every handshake, so
/// replacing the files rotates them without a restart. Here every new
/// connection asks `current()`, which looks at the files (certificate, key,
/// trusted CA, CRL) at most once per `checkInterval` and makes the contexts
/// again when one of them changed. A change that does not load (a key not
/// yet written beside its new certificate) keeps the contexts in use and
/// is logged once; the next look tries again. Connections already up keep
/// the context they started with, as in etcd.
final class TLSSource: Sendable {
    private let make: @Sendable () throws -> TLSContexts
    private let files: [String]
    private let side: String
    private let logger: Logger
    private let state: Mutex<State>

    /// How often the files are looked at, at most.
    static let checkInterval = Duration.seconds(1)

    private struct State {
        var contexts: TLSContexts
        var stamps: [FileStamp?]
        var checkedAt: ContinuousClock.Instant
        var failure: String?
    }

    /// What tells a file's new version from its old: replaced (another
    /// inode), rewritten (another modification time) or resized.
    struct FileStamp: Equatable {
        var inode: UInt64
        var modified: Date
        var size: UInt64

        init?(_ path: String) {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else { return nil }
            inode = (attributes[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
            modified = attributes[.modificationDate] as? Date ?? .distantPast
            size = (attributes[.size] as? NSNumber)?.uint64Value ?? 0
        }
    }

    /// Made at once from the files; throws if they do not load.
    init(files: [String], side: String, logger: Logger, make: @escaping @Sendable () throws -> TLSContexts) throws {
        self.make = make
        self.files = files
        self.side = side
        self.logger = logger
        let stamps = files.map(FileStamp.init)
        state = Mutex(State(contexts: try make(), stamps: stamps, checkedAt: .now, failure: nil))
    }

    convenience init(_ settings: TLSSettings, identity: TLSContexts.Identity, alpn: [String], side: String, logger: Logger) throws {
        let files = [identity.certFile, identity.keyFile, settings.trustedCAFile, settings.crlFile].filter { !$0.isEmpty }
        try self.init(files: files, side: side, logger: logger) { try TLSContexts.make(settings, identity: identity, alpn: alpn) }
    }

    /// The contexts for a new connection.
    func current() -> TLSContexts {
        state.withLock { state in
            let now = ContinuousClock.now
            guard now - state.checkedAt >= Self.checkInterval else { return state.contexts }
            state.checkedAt = now
            let stamps = files.map(FileStamp.init)
            guard stamps != state.stamps else { return state.contexts }
            do {
                state.contexts = try make()
                state.stamps = stamps
                state.failure = nil
                logger.info("reloaded TLS certificates", metadata: ["side": "\(side)", "files": "\(files)"])
            } catch {
                if state.failure != "\(error)" {
                    logger.warning("TLS files changed but do not load; serving with the ones before", metadata: [
                        "side": "\(side)", "error": "\(error)",
                    ])
                    state.failure = "\(error)"
                }
            }
            return state.contexts
        }
    }
}
