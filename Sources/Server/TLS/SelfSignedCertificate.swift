import Crypto
import Foundation
import SwiftASN1
import X509
#if canImport(Glibc)
import Glibc
#endif

/// The certificate `--auto-tls` and `--peer-auto-tls` serve: a P-256 key
/// and a self-signed certificate naming the member's listen hosts, kept as
/// `cert.pem` and `key.pem` in `<data-dir>/fixtures/client` or
/// `<data-dir>/fixtures/peer`, where etcd keeps its own. A member reuses the
/// pair it made before while it is valid, so a restart keeps its identity.
enum SelfSignedCertificate {
    /// etcd's: a year.
    static let validitySeconds: TimeInterval = 365 * 24 * 3600
    /// A certificate closer than this to its end is replaced at start.
    static let renewBeforeSeconds: TimeInterval = 24 * 3600

    struct Files: Sendable, Equatable {
        var certFile: String
        var keyFile: String
    }

    /// The pair in `directory` for `hosts` (host names or IP literals),
    /// made now unless a valid one is already there.
    static func ensure(in directory: String, hosts: [String], now: Date = Date()) throws -> Files {
        let files = Files(certFile: directory + "/cert.pem", keyFile: directory + "/key.pem")
        if let existing = try? String(contentsOfFile: files.certFile, encoding: .utf8),
           FileManager.default.fileExists(atPath: files.keyFile),
           let certificate = try? Certificate(pemEncoded: existing),
           certificate.notValidAfter > now.addingTimeInterval(renewBeforeSeconds) {
            return files
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let key = P256.Signing.PrivateKey()
        let certificate = try make(key: key, hosts: hosts, now: now)
        // The key first, readable by the owner only; the certificate last,
        // so a crash between the two leaves no certificate without its key.
        try write(key.pemRepresentation, to: files.keyFile, mode: 0o600)
        try write(try certificate.serializeAsPEM().pemString, to: files.certFile, mode: 0o644)
        return files
    }

    static func make(key: P256.Signing.PrivateKey, hosts: [String], now: Date) throws -> Certificate {
        let name = try DistinguishedName { OrganizationName("etcd") }
        var alternativeNames: [GeneralName] = []
        for host in Set(hosts).sorted() {
            if let address = ipAddressBytes(host) {
                alternativeNames.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(address))))
            } else if !host.isEmpty {
                alternativeNames.append(.dnsName(host))
            }
        }
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true, keyEncipherment: true))
            // Peers present the same certificate when they dial.
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            SubjectAlternativeNames(alternativeNames)
        }
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-60), notValidAfter: now.addingTimeInterval(validitySeconds),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: .init(key))
    }

    /// The network-order bytes of an IPv4 or IPv6 literal, or nil for a name.
    static func ipAddressBytes(_ host: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, host, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }

    private static func write(_ text: String, to path: String, mode: Int) throws {
        let temporary = path + ".tmp"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(text.utf8), attributes: [.posixPermissions: mode]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: temporary])
        }
        guard rename(temporary, path) == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
    }
}
