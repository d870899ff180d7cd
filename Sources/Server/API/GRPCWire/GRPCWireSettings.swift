import NIOCore
import NIOHTTP2

/// The tunables of the client port's gRPC-over-HTTP/2 layer, each with a
/// named default and a limit. Windows bound what one client can make a
/// member hold: a stream's unread bytes are at most its window, a
/// connection's at most its window.
struct GRPCWireSettings: Sendable {
    /// The largest request message, in bytes (etcd's --max-request-bytes
    /// plus gRPC's overhead); larger ones are refused as grpc-go refuses them.
    var maxRequestMessageBytes: Int
    /// HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS (etcd's --max-concurrent-streams).
    var maxConcurrentStreams: Int
    /// Whether a TLS client's verified certificate names its user, by its
    /// common name, for calls without a token (etcd's --client-cert-auth).
    var clientCertificateUsers = false
    /// Each stream's receive window, advertised in SETTINGS_INITIAL_WINDOW_SIZE.
    var streamWindowBytes = Self.defaultStreamWindowBytes
    /// The connection's receive window, raised from HTTP/2's 64 KiB at start.
    var connectionWindowBytes = Self.defaultConnectionWindowBytes
    /// How many bytes of a streaming call's complete messages may wait for
    /// its handler before the member stops opening the stream's window.
    var queuedInboundBytesMax = Self.defaultQueuedInboundBytesMax
    /// How many bytes of a streaming call's responses may wait for the
    /// socket before the handler's next write waits for them to drain.
    var queuedOutboundBytesMax = Self.defaultQueuedOutboundBytesMax
    /// HTTP/2's SETTINGS_MAX_HEADER_LIST_SIZE.
    var maxHeaderListBytes = Self.defaultMaxHeaderListBytes
    /// PING, SETTINGS and PRIORITY frames a client may send per
    /// `controlFrameWindow` before its connection is closed (GOAWAY
    /// ENHANCE_YOUR_CALM). grpc-go (etcd's clients, `etcdctl`) and gRPC
    /// core (Python's `grpcio`) send a BDP ping with data that arrives after
    /// the last ping's ack: about one per call for a client calling one
    /// after another. swift-nio-http2's default, 200 per 30 s, closed such
    /// a connection every 200 or so calls, and the client reconnected (16
    /// times in 3,000 puts); etcd's server allows pings while calls carry
    /// data. The limit stays to bound a flood.
    var controlFramesPerWindowMax = Self.defaultControlFramesPerWindowMax

    static let defaultStreamWindowBytes = 1 << 20
    static let defaultConnectionWindowBytes = 8 << 20
    static let defaultQueuedInboundBytesMax = 1 << 20
    static let defaultQueuedOutboundBytesMax = 1 << 20
    static let defaultMaxHeaderListBytes = 16 << 10
    static let defaultControlFramesPerWindowMax = 100_000
    static let controlFramesPerWindowRange = 200...10_000_000
    static let controlFrameWindow = TimeAmount.seconds(10)
    /// HTTP/2 caps every window at 2^31 - 1 bytes.
    static let windowBytesLimit = Int(Int32.max)

    init(maxRequestMessageBytes: Int, maxConcurrentStreams: Int) {
        self.maxRequestMessageBytes = maxRequestMessageBytes
        self.maxConcurrentStreams = maxConcurrentStreams
    }

    /// swift-nio-http2's connection settings: what the member announces in
    /// its first SETTINGS frame, and the flood limits.
    var http2Connection: NIOHTTP2Handler.ConnectionConfiguration {
        precondition(Self.controlFramesPerWindowRange.contains(controlFramesPerWindowMax), "control frame limit out of range")
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.initialSettings = http2Settings
        configuration.controlFrameRateLimit.maximumCount = controlFramesPerWindowMax
        configuration.controlFrameRateLimit.windowLength = Self.controlFrameWindow
        return configuration
    }

    /// What the member announces in its first SETTINGS frame.
    var http2Settings: HTTP2Settings {
        precondition(streamWindowBytes > 0 && streamWindowBytes <= Self.windowBytesLimit, "stream window out of HTTP/2's range")
        precondition(connectionWindowBytes >= 65_535 && connectionWindowBytes <= Self.windowBytesLimit, "connection window out of HTTP/2's range")
        return [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: min(maxConcurrentStreams, Int(UInt32.max >> 1))),
            HTTP2Setting(parameter: .initialWindowSize, value: streamWindowBytes),
            HTTP2Setting(parameter: .maxHeaderListSize, value: maxHeaderListBytes),
            HTTP2Setting(parameter: .enablePush, value: 0),
        ]
    }
}
