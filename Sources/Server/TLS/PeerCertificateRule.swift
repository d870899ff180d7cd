import NIOSSL
import X509

/// Which certificates a member's peers may present, beyond a chain the
/// trusted CA signed: etcd's `--peer-cert-allowed-cn` (the subject's common
/// name, exactly) or `--peer-cert-allowed-hostname` (a DNS name or IP
/// address the certificate is valid for), never both.
///
/// As etcd does, the rule holds both ways: a member refuses a connecting
/// peer whose client certificate fails it, and refuses to talk to a peer
/// whose server certificate fails it. Checked once the TLS handshake is
/// done and before any frame is read (`PeerCertificateGate`); a connection
/// that fails it carries nothing.
enum PeerCertificateRule: Sendable, Equatable {
    case commonName(String)
    case hostname(String)

    /// etcd's words for a certificate that fails the rule, in its log.
    static let refusalMessage = "client certificate authentication failed"
    /// What a member whose certificate the other side refused logs: Go's
    /// words for the TLS alert etcd's listener answers with.
    static let refusedByPeerMessage = "remote error: tls: bad certificate"

    /// The rule etcd's flags set, or none; etcd refuses to start with both.
    static func from(allowedCN: String, allowedHostname: String) throws(ConfigError) -> PeerCertificateRule? {
        if !allowedCN.isEmpty && !allowedHostname.isEmpty {
            throw .invalid("AllowedCN and AllowedHostname are mutually exclusive (cn=\"\(allowedCN)\", hostname=\"\(allowedHostname)\")")
        }
        if !allowedCN.isEmpty { return .commonName(allowedCN) }
        if !allowedHostname.isEmpty { return .hostname(allowedHostname) }
        return nil
    }

    /// Whether `certificate` (the other side's leaf; nil when it sent
    /// none) meets the rule. An unreadable certificate does not.
    func admits(_ certificate: NIOSSLCertificate?) -> Bool {
        guard let certificate, let bytes = try? certificate.toDERBytes(),
              let parsed = try? Certificate(derEncoded: bytes) else { return false }
        switch self {
        case .commonName(let name):
            return Self.commonName(of: parsed) == name
        case .hostname(let host):
            return Self.isValid(parsed, forHost: host)
        }
    }

    /// The subject's common name; with several, the last, as Go reads it.
    static func commonName(of certificate: Certificate) -> String? {
        var name: String?
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                name = String(attribute.value)
            }
        }
        return name
    }

    /// Go's `Certificate.VerifyHostname`, which etcd calls: an IP address
    /// matches an IP address the certificate names; a host name matches a
    /// DNS name, case aside, `*` standing for one whole leftmost label.
    /// The common name is never consulted (Go stopped in 1.15).
    static func isValid(_ certificate: Certificate, forHost host: String) -> Bool {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return false }
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let address = SelfSignedCertificate.ipAddressBytes(bare) {
            return names.contains { name in
                if case .ipAddress(let bytes) = name { return Array(bytes.bytes) == address }
                return false
            }
        }
        let wanted = normalized(host)
        guard !wanted.isEmpty else { return false }
        return names.contains { name in
            if case .dnsName(let pattern) = name { return matches(pattern: normalized(pattern), host: wanted) }
            return false
        }
    }

    private static func normalized(_ name: String) -> String {
        var name = name.lowercased()
        while name.hasSuffix(".") { name.removeLast() }
        return name
    }

    private static func matches(pattern: String, host: String) -> Bool {
        let patternLabels = pattern.split(separator: ".", omittingEmptySubsequences: false)
        let hostLabels = host.split(separator: ".", omittingEmptySubsequences: false)
        guard !pattern.isEmpty, patternLabels.count == hostLabels.count else { return false }
        for (index, (want, have)) in zip(patternLabels, hostLabels).enumerated() {
            if index == 0 && want == "*" && !have.isEmpty { continue }
            if want != have { return false }
        }
        return true
    }
}
