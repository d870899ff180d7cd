import Foundation
@testable import Server
import Testing

/// etcd's `--client-crl-file` and `--cipher-suites`, as parsed.
@Suite struct CertificateRevocationListTests {
    /// DER's tag-length-value, short and long lengths.
    static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        let count = content.count
        if count < 128 { return [tag, UInt8(count)] + content }
        if count < 256 { return [tag, 0x81, UInt8(count)] + content }
        return [tag, 0x82, UInt8(count >> 8), UInt8(count & 0xFF)] + content
    }

    static let sha256WithRSA: [UInt8] = tlv(0x30, tlv(0x06, [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x01, 0x0B]) + [0x05, 0x00])
    static let time: [UInt8] = tlv(0x17, Array("261130000000Z".utf8))

    /// An X.509 CRL (unsigned: etcd does not check the list's signature)
    /// revoking `serials`.
    static func crl(revoking serials: [[UInt8]]) -> [UInt8] {
        let revoked = tlv(0x30, serials.flatMap { tlv(0x30, tlv(0x02, $0) + time) })
        let issuer = tlv(0x30, tlv(0x31, tlv(0x30, tlv(0x06, [0x55, 0x04, 0x03]) + tlv(0x0C, Array("ca".utf8)))))
        let tbs = tlv(0x30, tlv(0x02, [0x01]) + sha256WithRSA + issuer + time + time + revoked)
        return tlv(0x30, tbs + sha256WithRSA + tlv(0x03, [0x00, 0x01, 0x02]))
    }

    @Test func revokedSerialsAreReadFromDERAndPEM() throws {
        let der = Self.crl(revoking: [[0x00, 0x9F, 0x01], [0x42]])
        let list = try CertificateRevocationList(bytes: der)
        #expect(list.revokedSerials == [[0x9F, 0x01], [0x42]], "the sign byte is not part of the serial")
        let pem = "-----BEGIN X509 CRL-----\n" + Data(der).base64EncodedString(options: .lineLength64Characters) + "\n-----END X509 CRL-----\n"
        #expect(try CertificateRevocationList(bytes: Array(pem.utf8)).revokedSerials == list.revokedSerials)
        #expect(try CertificateRevocationList(bytes: Self.crl(revoking: [])).revokedSerials.isEmpty)
        #expect(throws: (any Error).self) { try CertificateRevocationList(bytes: Array("not a list".utf8)) }
    }

    @Test func goCipherSuiteNamesBecomeOpenSSLsAndUnknownOnesAreRefused() throws {
        #expect(try CipherSuites.parse("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305")
            == ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"])
        #expect(try CipherSuites.parse("").isEmpty)
        do {
            _ = try CipherSuites.parse("TLS_RSA_WITH_RC4_128_SHA")
            Issue.record("RC4 was accepted")
        } catch {
            #expect(error.description == "unexpected TLS cipher suite \"TLS_RSA_WITH_RC4_128_SHA\"")
        }
    }
}
