import Foundation
import JWTKit

/// etcd's JWT tokens (`--auth-token jwt,pub-key=...,priv-key=...,sign-method=RS256,ttl=5m`):
/// signed claims `username`, `revision` (the auth store's when issued)
/// and `exp`; stateless, so they outlive restarts and `auth disable`, and
/// any change to users or roles makes them old (etcd's "revision of auth
/// store is old", after which clients authenticate again).
struct JWTTokens: Sendable {
    /// etcd's default lifetime of a JWT.
    static let ttlDefault: Duration = .seconds(300)
    static let ttlRange: ClosedRange<Duration> = .milliseconds(1) ... .seconds(86_400 * 365)

    let keys: JWTKeyCollection
    let ttl: Duration
    /// Only a public key was given: tokens are checked, never issued.
    let verifyOnly: Bool

    /// What a token says.
    struct Claims: JWTPayload, Equatable {
        var username: String
        var revision: UInt64
        var exp: ExpirationClaim

        func verify(using algorithm: some JWTAlgorithm) async throws {
            try exp.verifyNotExpired()
        }
    }

    /// Why the options are refused, in etcd's words where it has them.
    enum OptionError: Error, CustomStringConvertible {
        case invalid(String)
        var description: String {
            switch self { case .invalid(let why): "--auth-token: invalid auth options: \(why)" }
        }
    }

    /// The options after `jwt,`: `k=v` pairs (etcd's decomposeOpts; unknown
    /// keys are ignored as etcd only warns).
    static func options(_ text: String) throws(OptionError) -> [String: String] {
        var options: [String: String] = [:]
        for part in text.split(separator: ",").dropFirst() {
            let pair = part.split(separator: "=", omittingEmptySubsequences: false)
            guard pair.count == 2 else { throw .invalid("'\(part)' is not key=value") }
            guard options[String(pair[0])] == nil else { throw .invalid("'\(pair[0])' given twice") }
            options[String(pair[0])] = String(pair[1])
        }
        return options
    }

    /// Keys from etcd's options: `sign-method` (RS, PS, ES or HS with 256, 384
    /// or 512), `priv-key` and/or `pub-key` (PEM files; a certificate for a
    /// public key; an HMAC secret's file is the secret), `ttl` (Go's duration).
    static func make(_ text: String) async throws -> JWTTokens {
        let options = try Self.options(text)
        guard let method = options["sign-method"] else { throw OptionError.invalid("sign-method is required") }
        let ttl = try options["ttl"].map { try GoDuration.parse($0) } ?? ttlDefault
        guard ttlRange.contains(ttl) else { throw OptionError.invalid("ttl \(options["ttl"] ?? "") out of range") }
        func file(_ key: String) throws -> String? {
            guard let path = options[key] else { return nil }
            do {
                return try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw OptionError.invalid("cannot read \(key) \(path): \(error)")
            }
        }
        let (privateKey, publicKey) = (try file("priv-key"), try file("pub-key"))
        guard privateKey != nil || publicKey != nil else { throw OptionError.invalid("priv-key or pub-key is required") }
        let keys = JWTKeyCollection()
        let family = method.prefix(2), bits = method.dropFirst(2)
        let digest: DigestAlgorithm
        switch bits {
        case "256": digest = .sha256
        case "384": digest = .sha384
        case "512": digest = .sha512
        default: throw OptionError.invalid("unknown sign-method \(method)")
        }
        switch family {
        case "RS", "PS":
            let key: any RSAKey = if let privateKey {
                try Insecure.RSA.PrivateKey(pem: privateKey)
            } else if publicKey!.contains("CERTIFICATE") {
                try Insecure.RSA.PublicKey(certificatePEM: publicKey!)
            } else {
                try Insecure.RSA.PublicKey(pem: publicKey!)
            }
            if family == "RS" { await keys.add(rsa: key, digestAlgorithm: digest) } else { await keys.add(pss: key, digestAlgorithm: digest) }
        case "ES":
            switch bits {
            case "256":
                if let privateKey { await keys.add(ecdsa: try ES256PrivateKey(pem: privateKey)) } else {
                    await keys.add(ecdsa: publicKey!.contains("CERTIFICATE") ? try ES256PublicKey(certificate: publicKey!) : try ES256PublicKey(pem: publicKey!))
                }
            case "384":
                if let privateKey { await keys.add(ecdsa: try ES384PrivateKey(pem: privateKey)) } else {
                    await keys.add(ecdsa: publicKey!.contains("CERTIFICATE") ? try ES384PublicKey(certificate: publicKey!) : try ES384PublicKey(pem: publicKey!))
                }
            default:
                if let privateKey { await keys.add(ecdsa: try ES512PrivateKey(pem: privateKey)) } else {
                    await keys.add(ecdsa: publicKey!.contains("CERTIFICATE") ? try ES512PublicKey(certificate: publicKey!) : try ES512PublicKey(pem: publicKey!))
                }
            }
        case "HS":
            guard let secret = privateKey else { throw OptionError.invalid("HMAC needs priv-key (the secret's file)") }
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: digest)
        default:
            throw OptionError.invalid("unknown sign-method \(method)")
        }
        return JWTTokens(keys: keys, ttl: ttl, verifyOnly: privateKey == nil)
    }

    /// A token for `username` at auth revision `revision`; nil when verify-only.
    func issue(username: String, revision: UInt64) async throws -> String? {
        guard !verifyOnly else { return nil }
        let expires = Date().addingTimeInterval(Double(ttl.components.seconds) + Double(ttl.components.attoseconds) / 1e18)
        return try await keys.sign(Claims(username: username, revision: revision, exp: ExpirationClaim(value: expires)))
    }

    /// The claims of a valid, unexpired token; nil for any other string.
    func claims(of token: String) async -> Claims? {
        try? await keys.verify(token, as: Claims.self)
    }
}

/// Go's time.ParseDuration, for etcd's options: "1s", "10m", "1h30m", "250ms".
enum GoDuration {
    static func parse(_ text: String) throws(JWTTokens.OptionError) -> Duration {
        var total: Duration = .zero
        var rest = Substring(text)
        guard !rest.isEmpty else { throw .invalid("empty duration") }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isNumber || $0 == "." }
            guard let value = Double(digits) else { throw .invalid("duration \(text)") }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix { !$0.isNumber && $0 != "." }
            rest = rest.dropFirst(unit.count)
            let scale: Double
            switch unit {
            case "ns": scale = 1e-9
            case "us", "µs": scale = 1e-6
            case "ms": scale = 1e-3
            case "s": scale = 1
            case "m": scale = 60
            case "h": scale = 3600
            default: throw .invalid("duration \(text)")
            }
            total += .nanoseconds(Int64(value * scale * 1e9))
        }
        return total
    }
}
