import Foundation
import GRPCCore
import NIOHPACK

/// The HTTP/2 header blocks of gRPC's protocol (PROTOCOL-HTTP2.md): request
/// headers read into grpc-swift's metadata, response headers, trailers.
enum GRPCWireHeaders {
    static let contentType = "application/grpc"

    /// The response's leading headers.
    static let response: HPACKHeaders = [":status": "200", "content-type": contentType]

    /// The trailers of a call that succeeded without trailing metadata.
    static let ok: HPACKHeaders = ["grpc-status": "0"]

    /// Trailers carrying `status`; `trailersOnly` when no headers went first.
    static func trailers(_ status: Status, metadata: Metadata = [:], trailersOnly: Bool) -> HPACKHeaders {
        var headers = HPACKHeaders()
        if trailersOnly {
            headers.add(name: ":status", value: "200")
            headers.add(name: "content-type", value: contentType)
        }
        headers.add(name: "grpc-status", value: String(status.code.rawValue))
        if !status.message.isEmpty {
            headers.add(name: "grpc-message", value: percentEncoded(status.message))
        }
        add(metadata, to: &headers)
        return headers
    }

    /// Response headers with the handler's metadata.
    static func response(metadata: Metadata) -> HPACKHeaders {
        var headers = response
        add(metadata, to: &headers)
        return headers
    }

    private static func add(_ metadata: Metadata, to headers: inout HPACKHeaders) {
        for (key, value) in metadata {
            switch value {
            case .string(let text): headers.add(name: key.lowercased(), value: text)
            case .binary(let bytes): headers.add(name: key.lowercased(), value: Data(bytes).base64EncodedString())
            }
        }
    }

    /// gRPC's encoding of `grpc-message`: UTF-8, with every byte outside
    /// printable ASCII, and `%` itself, written as `%XX`.
    static func percentEncoded(_ message: String) -> String {
        var encoded = ""
        encoded.reserveCapacity(message.utf8.count)
        for byte in message.utf8 {
            if byte >= 0x20, byte <= 0x7E, byte != UInt8(ascii: "%") {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded += "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            }
        }
        return encoded
    }

    /// The request's headers as grpc-swift's metadata, as its HTTP/2
    /// transport passes them (binary `-bin` values decoded from base64).
    static func metadata(_ headers: HPACKHeaders) -> Metadata {
        var metadata = Metadata()
        metadata.reserveCapacity(headers.count)
        for header in headers {
            if header.name.hasSuffix("-bin"), let bytes = decodeBase64(header.value) {
                metadata.addBinary(bytes, forKey: header.name)
            } else {
                metadata.addString(header.value, forKey: header.name)
            }
        }
        return metadata
    }

    /// Base64 with or without padding, as gRPC allows either.
    private static func decodeBase64(_ text: String) -> [UInt8]? {
        var padded = text
        while padded.utf8.count % 4 != 0 { padded += "=" }
        return Data(base64Encoded: padded).map { Array($0) }
    }
}

private extension String {
    func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
