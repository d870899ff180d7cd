import Foundation
import NIOCore
import NIOSSL
import NIOTLS
import SwiftASN1
import X509

/// etcd's `--client-crl-file`: the serial numbers a certificate revocation
/// list (PEM or DER) revokes. As etcd 3.4 does, a connection whose
/// certificate chain holds a revoked serial is closed once its TLS
/// handshake is done, and the list's own signature is not checked (the
/// operator's file is trusted as the CA file is).
struct CertificateRevocationList: Sendable, Equatable {
    let revokedSerials: Set<[UInt8]>

    init(revokedSerials: Set<[UInt8]>) {
        self.revokedSerials = revokedSerials
    }

    init(file: String) throws(ConfigError) {
        guard let data = FileManager.default.contents(atPath: file) else { throw .invalid("cannot read the CRL file \(file)") }
        do {
            self = try Self(bytes: Array(data))
        } catch {
            throw .invalid("the CRL file \(file) does not parse: \(error)")
        }
    }

    init(bytes: [UInt8]) throws {
        var der = bytes
        if let text = String(bytes: bytes, encoding: .utf8), text.contains("-----BEGIN") {
            der = try PEMDocument(pemString: text).derBytes
        }
        // CertificateList ::= SEQUENCE { tbsCertList SEQUENCE { [version INTEGER], signature,
        //   issuer, thisUpdate, [nextUpdate], [revokedCertificates SEQUENCE OF SEQUENCE {
        //   userCertificate INTEGER, revocationDate, [extensions] }], [0] crlExtensions }, ... }
        let root = try DER.parse(der)
        guard case .constructed(let top) = root.content, let tbs = top.first(where: { _ in true }),
              case .constructed(let fields) = tbs.content
        else { throw ASN1Error.invalidASN1Object(reason: "not a certificate revocation list") }
        var serials = Set<[UInt8]>()
        for field in fields where field.identifier == .sequence {
            guard case .constructed(let entries) = field.content else { continue }
            let list = Array(entries)
            let isRevokedList = !list.isEmpty && list.allSatisfy { entry in
                guard entry.identifier == .sequence, case .constructed(let parts) = entry.content,
                      let first = parts.first(where: { _ in true }) else { return false }
                return first.identifier == .integer
            }
            guard isRevokedList else { continue }
            for entry in list {
                guard case .constructed(let parts) = entry.content, let serial = parts.first(where: { _ in true }),
                      case .primitive(let bytes) = serial.content else { continue }
                serials.insert(Self.normalized(Array(bytes)))
            }
        }
        revokedSerials = serials
    }

    /// A serial's bytes without the sign byte DER may lead with.
    static func normalized(_ serial: [UInt8]) -> [UInt8] {
        var bytes = serial[...]
        while bytes.count > 1, bytes.first == 0 { bytes = bytes.dropFirst() }
        return Array(bytes)
    }

    func revokes(_ certificate: Certificate) -> Bool {
        revokedSerials.contains(Self.normalized(Array(certificate.serialNumber.bytes)))
    }
}

/// Closes a TLS connection whose peer presents a revoked certificate, once
/// its handshake completes (etcd's checkCRL), before any of its data is read.
final class CertificateRevocationGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    let list: CertificateRevocationList
    private var checked = false
    /// Set once a revoked certificate was found: data TLS decrypted in the
    /// same flight as the handshake still arrives, and must be dropped.
    private var refused = false

    init(list: CertificateRevocationList) {
        self.list = list
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent {
            let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLHandler.self)
            let chain = handler?.peerValidatedCertificateChain.map { Array($0) } ?? handler?.peerCertificate.map { [$0] } ?? []
            let revoked = chain.contains { certificate in
                (try? Certificate(derEncoded: certificate.toDERBytes())).map(list.revokes) ?? false
            }
            checked = true
            if revoked {
                refused = true
                context.close(promise: nil)
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard checked, !refused else {
            // Before its handshake TLS hands over no data; after a refusal, none is read.
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(data)
    }
}
