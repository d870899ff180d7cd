import NIOSSL

/// The TLS contexts of one side of a member (clients or peers), made once at
/// start: the server's, and for peers the dialler's, which presents the
/// same certificate.
struct TLSContexts: Sendable {
    let server: NIOSSLContext
    let client: NIOSSLContext
    /// Peers: what the other side's certificate must also meet, both ways.
    var certificateRule: PeerCertificateRule?
    /// Certificates refused once their connection's handshake is done.
    var revocations: CertificateRevocationList?
    /// The server demands a certificate its CA signed (`--peer-client-cert-auth`
    /// or `--client-cert-auth`, not auto-TLS): a peer's then names the hosts
    /// the member it claims to be may live on (`PeerListener`).
    var verifiesOtherSide = false

    /// The certificate `settings` name, or the self-signed one `generated`
    /// when only auto-TLS was asked for.
    struct Identity: Sendable {
        var certFile: String
        var keyFile: String
        /// A self-signed certificate: whom it talks to cannot check it, so
        /// as etcd's auto-TLS it encrypts without verifying the other side.
        var selfSigned: Bool
    }

    /// What the client listener offers in ALPN, in the server's order of
    /// preference: a client offering HTTP/1.1 (curl) gets it, for
    /// `/health` and the JSON gateway; gRPC clients offer only `h2`.
    static let clientALPN = ["http/1.1", "h2"]

    /// etcd's floor.
    static let minimumVersion = TLSVersion.tlsv12

    static func make(_ settings: TLSSettings, identity: Identity, alpn: [String] = []) throws -> TLSContexts {
        let chain = try NIOSSLCertificate.fromPEMFile(identity.certFile).map { NIOSSLCertificateSource.certificate($0) }
        // PEM whatever the file is called (etcd's own fixtures end in
        // `.key.insecure`); NIOSSL would guess the format from the name.
        let key = NIOSSLPrivateKeySource.privateKey(try NIOSSLPrivateKey(file: identity.keyFile, format: .pem))
        var server = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: key)
        server.minimumTLSVersion = minimumVersion
        server.applicationProtocols = alpn
        if !settings.trustedCAFile.isEmpty { server.trustRoots = .file(settings.trustedCAFile) }
        // etcd verifies client certificates only when told to; then a client without one is refused.
        server.certificateVerification = settings.clientCertAuth ? .noHostnameVerification : .none
        if !settings.cipherSuites.isEmpty {
            // Only TLS 1.2's suites can be chosen (as in etcd): serve TLS 1.2 alone.
            server.cipherSuites = settings.cipherSuites.joined(separator: ":")
            server.maximumTLSVersion = .tlsv12
        }

        var client = TLSConfiguration.makeClientConfiguration()
        client.minimumTLSVersion = minimumVersion
        client.certificateChain = chain
        client.privateKey = key
        if !settings.trustedCAFile.isEmpty { client.trustRoots = .file(settings.trustedCAFile) }
        client.certificateVerification = identity.selfSigned ? .none : .fullVerification
        if !settings.cipherSuites.isEmpty {
            client.cipherSuites = settings.cipherSuites.joined(separator: ":")
            client.maximumTLSVersion = .tlsv12
        }
        return TLSContexts(server: try NIOSSLContext(configuration: server), client: try NIOSSLContext(configuration: client),
                           certificateRule: try PeerCertificateRule.from(allowedCN: settings.allowedCN, allowedHostname: settings.allowedHostname),
                           revocations: settings.crlFile.isEmpty ? nil : try CertificateRevocationList(file: settings.crlFile),
                           verifiesOtherSide: settings.clientCertAuth && !identity.selfSigned && !settings.trustedCAFile.isEmpty)
    }

    /// What a member without peer TLS settings dials an `https` peer with:
    /// the system's trust roots, full verification.
    static func defaultClient() throws -> NIOSSLContext {
        var client = TLSConfiguration.makeClientConfiguration()
        client.minimumTLSVersion = minimumVersion
        return try NIOSSLContext(configuration: client)
    }
}
