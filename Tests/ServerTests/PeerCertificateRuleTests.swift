import Crypto
import Foundation
import NIOSSL
@testable import Server
import SwiftASN1
import Testing
import X509

/// etcd's `--peer-cert-allowed-cn` and `--peer-cert-allowed-hostname`
/// (`PeerCertificateRule`): which certificates pass, as etcd's Go checks
/// (`Subject.CommonName ==`, `Certificate.VerifyHostname`) decide.
@Suite struct PeerCertificateRuleTests {
    static func certificate(commonName: String?, names: [GeneralName]) throws -> NIOSSLCertificate {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName("etcd")
            if let commonName { CommonName(commonName) }
        }
        let extensions = try Certificate.Extensions {
            if !names.isEmpty { SubjectAlternativeNames(names) }
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: Date().addingTimeInterval(-60), notValidAfter: Date().addingTimeInterval(3600),
            issuer: subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: .init(key))
        var serializer = DER.Serializer()
        try serializer.serialize(certificate)
        return try NIOSSLCertificate(bytes: serializer.serializedBytes, format: .der)
    }

    static let localhost: [GeneralName] = [.dnsName("localhost"), .ipAddress(ASN1OctetString(contentBytes: [127, 0, 0, 1]))]

    @Test func theCommonNameMustMatchExactly() throws {
        let rule = PeerCertificateRule.commonName("example.com")
        #expect(rule.admits(try Self.certificate(commonName: "example.com", names: Self.localhost)))
        #expect(!rule.admits(try Self.certificate(commonName: "example2.com", names: Self.localhost)))
        #expect(!rule.admits(try Self.certificate(commonName: "EXAMPLE.com", names: [])), "Go compares the name byte for byte")
        #expect(!rule.admits(try Self.certificate(commonName: nil, names: [.dnsName("example.com")])), "a DNS name is not a common name")
        #expect(!rule.admits(nil), "no certificate, no admission")
    }

    @Test func aHostNameMatchesTheCertificatesNamesNotItsCommonName() throws {
        let names: [GeneralName] = [.dnsName("member-1.ballot.test"), .dnsName("*.peers.ballot.test"),
                                    .ipAddress(ASN1OctetString(contentBytes: [10, 0, 0, 7]))]
        let certificate = try Self.certificate(commonName: "only-a-common-name.test", names: names)
        for host in ["member-1.ballot.test", "MEMBER-1.Ballot.Test", "member-1.ballot.test.", "m2.peers.ballot.test", "10.0.0.7"] {
            #expect(PeerCertificateRule.hostname(host).admits(certificate), "\(host)")
        }
        for host in ["ballot.test", "a.m2.peers.ballot.test", "peers.ballot.test", "10.0.0.8", "only-a-common-name.test", ""] {
            #expect(!PeerCertificateRule.hostname(host).admits(certificate), "\(host)")
        }
        let v6 = try Self.certificate(commonName: nil, names: [.ipAddress(ASN1OctetString(contentBytes: ArraySlice([UInt8](repeating: 0, count: 15) + [1])))])
        #expect(PeerCertificateRule.hostname("::1").admits(v6))
        #expect(PeerCertificateRule.hostname("[::1]").admits(v6))
        #expect(!PeerCertificateRule.hostname("::2").admits(v6))
    }

    @Test func bothRulesAtOnceAreRefusedWithEtcdsWords() throws {
        #expect(try PeerCertificateRule.from(allowedCN: "", allowedHostname: "") == nil)
        #expect(try PeerCertificateRule.from(allowedCN: "a", allowedHostname: "") == .commonName("a"))
        #expect(try PeerCertificateRule.from(allowedCN: "", allowedHostname: "h") == .hostname("h"))
        let error = #expect(throws: ConfigError.self) { try PeerCertificateRule.from(allowedCN: "a", allowedHostname: "h") }
        #expect(error?.description == "AllowedCN and AllowedHostname are mutually exclusive (cn=\"a\", hostname=\"h\")")
    }
}
