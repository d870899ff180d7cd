import Foundation
import Logging

/// What a member does when its disk fails it (a WAL write or fsync, a
/// store commit, ENOSPC, EIO): it stops at once, as etcd's does, before
/// anything that depended on the failed write is acknowledged. The state
/// on disk is then unknown to it; a restart recovers from what the disk
/// kept (the WAL is the source of truth), so once the disk is fixed nothing
/// acknowledged is lost.
///
/// It logs one critical line and exits with status 1, rather than trapping:
/// a crash report would hold the member's ports while the backtrace is
/// written, and a supervisor restarting the member would find them taken.
public enum IOFailure {
    public static let exitStatus: Int32 = 1

    public static func stop(_ logger: Logger, _ what: String, _ error: any Error) -> Never {
        logger.critical("stopping: the disk failed", metadata: ["while": "\(what)", "error": "\(error)"])
        // swift-log's stream handlers flush each line; nothing else is buffered.
        fflush(nil)
        _exit(exitStatus)
    }
}
