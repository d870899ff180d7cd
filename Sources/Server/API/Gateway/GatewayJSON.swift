import GRPCCore
import NIOHTTP1
import SwiftProtobuf

/// The JSON shapes of etcd's gateway (grpc-gateway v1 with its default
/// marshaler, `JSONPb{OrigName: true}`): proto field names as written in
/// the .proto, 64-bit integers as strings, bytes as base64, defaults left
/// out; unknown request fields ignored.
enum GatewayJSON {
    static let encoding: JSONEncodingOptions = {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        return options
    }()

    static let decoding: JSONDecodingOptions = {
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = true
        return options
    }()

    /// grpc-gateway's HTTPStatusFromCode.
    static func httpStatus(_ code: RPCError.Code) -> HTTPResponseStatus {
        switch code {
        case .cancelled: .requestTimeout
        case .unknown: .internalServerError
        case .invalidArgument: .badRequest
        case .deadlineExceeded: .gatewayTimeout
        case .notFound: .notFound
        case .alreadyExists: .conflict
        case .permissionDenied: .forbidden
        case .unauthenticated: .unauthorized
        case .resourceExhausted: .tooManyRequests
        case .failedPrecondition: .preconditionFailed
        case .aborted: .conflict
        case .outOfRange: .badRequest
        case .unimplemented: .notImplemented
        case .internalError: .internalServerError
        case .unavailable: .serviceUnavailable
        case .dataLoss: .internalServerError
        default: .internalServerError
        }
    }

    /// grpc-gateway's DefaultHTTPError body: `{"error":…,"message":…,"code":…}`.
    static func errorBody(_ error: RPCError) -> [UInt8] {
        let message = quoted(error.message)
        return Array("{\"error\":\(message),\"message\":\(message),\"code\":\(error.code.rawValue)}".utf8)
    }

    /// A failed stream's last chunk (grpc-gateway's streamChunk with an error).
    static func streamErrorChunk(_ error: RPCError) -> [UInt8] {
        let status = httpStatus(error.code)
        return Array(("{\"error\":{\"grpc_code\":\(error.code.rawValue),\"http_code\":\(status.code),"
            + "\"message\":\(quoted(error.message)),\"http_status\":\(quoted(status.reasonPhrase))}}").utf8)
    }

    /// A stream's message chunk: `{"result":<message>}`.
    static func resultChunk(_ message: [UInt8]) -> [UInt8] {
        Array("{\"result\":".utf8) + message + Array("}".utf8)
    }

    /// A JSON string as Go's encoding/json writes it (it escapes `<`, `>`
    /// and `&` for HTML, and U+2028/U+2029).
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<", ">", "&", "\u{2028}", "\u{2029}":
                out += "\\u" + hex4(scalar.value)
            default:
                if scalar.value < 0x20 { out += "\\u" + hex4(scalar.value) } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out + "\""
    }

    private static func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// The JSON values of a request body, in order: grpc-gateway decodes a
    /// body with Go's json.Decoder, so a streaming call's body may hold
    /// several values one after another. Only the value boundaries are
    /// found here; each value is parsed as its message later.
    static func values(_ body: [UInt8]) throws(RPCError) -> [ArraySlice<UInt8>] {
        let space: Set<UInt8> = [0x20, 0x09, 0x0A, 0x0D]
        let quote = UInt8(ascii: "\""), backslash = UInt8(ascii: "\\")
        let openers: Set<UInt8> = [UInt8(ascii: "{"), UInt8(ascii: "[")]
        let closers: Set<UInt8> = [UInt8(ascii: "}"), UInt8(ascii: "]")]
        var values: [ArraySlice<UInt8>] = []
        var index = 0
        while true {
            while index < body.count, space.contains(body[index]) { index += 1 }
            guard index < body.count else { return values }
            let start = index
            let first = body[index]
            if openers.contains(first) || first == quote {
                var depth = 0
                var inString = false
                repeat {
                    guard index < body.count else { throw RPCError(code: .invalidArgument, message: "unexpected EOF") }
                    let byte = body[index]
                    index += 1
                    if inString {
                        if byte == backslash { index += 1 } else if byte == quote { inString = false }
                    } else if byte == quote {
                        inString = true
                    } else if openers.contains(byte) {
                        depth += 1
                    } else if closers.contains(byte) {
                        depth -= 1
                    }
                } while depth > 0 || inString
            } else if closers.contains(first) {
                throw RPCError(code: .invalidArgument, message: "invalid character '\(Character(UnicodeScalar(first)))' looking for beginning of value")
            } else {
                while index < body.count, !space.contains(body[index]), !openers.contains(body[index]),
                      !closers.contains(body[index]), body[index] != quote { index += 1 }
            }
            values.append(body[start..<min(index, body.count)])
        }
    }
}
