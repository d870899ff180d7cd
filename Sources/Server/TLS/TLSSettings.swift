/// What one side of a member (its client URLs, or its peer URLs) is told
/// about TLS, in etcd's terms: `--cert-file --key-file --trusted-ca-file
/// --client-cert-auth --auto-tls`, or their `--peer-*` twins.
public struct TLSSettings: Sendable, Equatable {
    /// PEM certificate chain and key this side presents, as a server and
    /// (peers) as a client.
    public var certFile = ""
    public var keyFile = ""
    /// PEM certificates trusted to sign the other side's certificate.
    public var trustedCAFile = ""
    /// Demand and verify a certificate from every connecting client (peer).
    public var clientCertAuth = false
    /// Without certificate files, make a self-signed certificate under the
    /// data directory, as etcd's `--auto-tls` does. Its connections are
    /// encrypted but authenticate no one: peers dialling such a member skip
    /// verification, as etcd's do.
    public var autoTLS = false
    /// Peers only (etcd's `--peer-cert-allowed-cn`, `--peer-cert-allowed-hostname`):
    /// the common name, or the host name, every peer certificate must carry
    /// (`PeerCertificateRule`); at most one of them.
    public var allowedCN = ""
    public var allowedHostname = ""
    /// etcd's `--client-crl-file` / `--peer-crl-file`: a revocation list
    /// (PEM or DER) whose certificates are refused (`CertificateRevocationList`).
    public var crlFile = ""
    /// etcd's `--cipher-suites`, as OpenSSL names them (`CipherSuites`);
    /// empty: the TLS library's defaults, TLS 1.3 included.
    public var cipherSuites: [String] = []

    public init() {}

    /// Whether certificate files were given (they win over `autoTLS`, as in etcd).
    public var hasCertificate: Bool { !certFile.isEmpty || !keyFile.isEmpty }
    /// Whether this side has anything to serve TLS with.
    public var isEmpty: Bool { !hasCertificate && !autoTLS }
}
