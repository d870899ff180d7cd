import Foundation
import NIOConcurrencyHelpers
import StateMachine

/// etcd's simple tokens: `<16 random letters>.<log index>`, assigned by
/// every member as it applies the Authenticate entry, kept in memory only
/// (a restart forgets them; clients authenticate again on etcd's "invalid
/// auth token"), each forgotten after `ttl` unused, its user's deleted or
/// password changed, or auth disabled.
final class SimpleTokens: Sendable {
    static let ttlDefault: Duration = .seconds(300)
    /// etcd refuses no TTL; one day bounds how long a token table can grow.
    static let ttlRange: ClosedRange<Duration> = .seconds(1) ... .seconds(86_400)
    /// How far past this member's commit index a token's index may be and
    /// still be waited for (its Authenticate entry committed elsewhere, not
    /// yet known here); etcd's limit on applies lagging commits is 5,000.
    static let indexLeadMax: UInt64 = 10_000
    /// Expired tokens are swept at most this often, when one is assigned.
    static let sweepInterval: Duration = .seconds(1)

    private struct Entry {
        var username: String
        var expires: ContinuousClock.Instant
    }

    private struct Table {
        var entries: [String: Entry] = [:]
        var swept = ContinuousClock.now
    }

    let ttl: Duration
    private let table = NIOLockedValueBox(Table())

    init(ttl: Duration = SimpleTokens.ttlDefault) {
        precondition(Self.ttlRange.contains(ttl), "token TTL \(ttl) out of range")
        self.ttl = ttl
    }

    /// The random part of a new token (etcd's 16 letters from crypto/rand).
    static func randomPrefix() -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
        var generator = SystemRandomNumberGenerator()
        return String((0..<16).map { _ in letters.randomElement(using: &generator)! })
    }

    /// What the auth store's applied commands did to tokens.
    func apply(_ effects: [AuthStore.TokenEffect]) {
        let now = ContinuousClock.now
        table.withLockedValue { table in
            for effect in effects {
                switch effect {
                case .assign(let token, let username):
                    table.entries[token] = Entry(username: username, expires: now + ttl)
                case .forgetUser(let username):
                    table.entries = table.entries.filter { $0.value.username != username }
                case .forgetAll:
                    table.entries = [:]
                }
            }
            if now - table.swept >= Self.sweepInterval {
                table.entries = table.entries.filter { $0.value.expires > now }
                table.swept = now
            }
        }
    }

    /// The user `token` stands for, its lifetime renewed; nil if unknown or expired.
    func user(of token: String) -> String? {
        let now = ContinuousClock.now
        return table.withLockedValue { table in
            guard var entry = table.entries[token] else { return nil }
            guard entry.expires > now else {
                table.entries[token] = nil
                return nil
            }
            entry.expires = now + ttl
            table.entries[token] = entry
            return entry.username
        }
    }

    /// The log index a well-formed simple token was assigned at (etcd waits
    /// for it to be applied before judging the token).
    static func index(of token: String) -> UInt64? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        return UInt64(parts[1])
    }

    var count: Int { table.withLockedValue { $0.entries.count } }
}
