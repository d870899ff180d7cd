import NIOCore
import NIOPosix

extension ServerBootstrap {
    /// Bind a listener to a client or metrics URL: a Unix socket (replacing
    /// a stale socket file) or a TCP host and port, reusable at once.
    func bind(to address: HostPort) async throws -> any Channel {
        if address.unixSocket {
            return try await bind(unixDomainSocketPath: address.host, cleanupExistingSocketFile: true).get()
        }
        return try await serverChannelOption(.socketOption(.so_reuseaddr), value: 1).bind(host: address.host, port: address.port).get()
    }
}
