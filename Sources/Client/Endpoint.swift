/// One member's client URL as the client dials it: `host:port`, with or
/// without etcd's `http://` scheme (TLS is not offered yet: `https://` is
/// refused rather than spoken in plain text).
public struct Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: Int

    public init(host: String, port: Int) {
        precondition((1...65_535).contains(port), "a TCP port is 1 to 65535")
        self.host = host
        self.port = port
    }

    /// `127.0.0.1:2379` or `http://127.0.0.1:2379`.
    public init(parsing text: String) throws(ClientError) {
        var rest = Substring(text)
        if rest.hasPrefix("https://") { throw .badEndpoint(text, reason: "TLS is not supported by this client yet") }
        if rest.hasPrefix("http://") { rest = rest.dropFirst("http://".count) }
        if rest.hasSuffix("/") { rest = rest.dropLast() }
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65_535).contains(port),
              colon > rest.startIndex else {
            throw .badEndpoint(text, reason: "expected host:port")
        }
        self.init(host: String(rest[..<colon]), port: port)
    }

    public var description: String { "\(host):\(port)" }
}
