import Foundation
import GRPCCore
import Logging
import Prometheus
import StateMachine

/// Who was refused what: failed logins, invalid tokens, requests without a
/// user name and permission denials, each logged with the user (when one
/// is known) and the client's address, and counted in `/metrics` as
/// `ballot_auth_refusals_total{reason}` (etcd 3.4 counts none of them, so
/// the name is Ballot's). Seen where a call's error leaves the member (the
/// gRPC interceptor, the fast unary path, Authenticate), once per call.
///
/// A client refused over and over must not fill the disk with log lines:
/// the lines keep to a `LogBudget`; the counters count every refusal.
final class AuthAudit: Sendable {
    enum Reason: String, CaseIterable, Sendable {
        case authenticationFailed = "authentication_failed"
        case invalidToken = "invalid_token"
        case userEmpty = "user_empty"
        case permissionDenied = "permission_denied"

        /// The refusal a call's error is, if it is one audited.
        init?(_ error: RPCError) {
            switch error.message {
            case AuthFailure.authFailed.rawValue, AuthFailure.noPasswordUser.rawValue: self = .authenticationFailed
            case AuthFailure.invalidAuthToken.rawValue: self = .invalidToken
            case AuthFailure.userEmpty.rawValue: self = .userEmpty
            case AuthFailure.permissionDenied.rawValue: self = .permissionDenied
            // Maintenance admin calls and Alarm refuse with etcd's raw "auth: ..." text.
            case AuthFailure.invalidAuthToken.internalText: self = .invalidToken
            case AuthFailure.userEmpty.internalText: self = .userEmpty
            case AuthFailure.permissionDenied.internalText: self = .permissionDenied
            default: return nil
            }
        }
    }

    private let logger: Logger
    private let counters: [Reason: Counter]
    private let budget = LogBudget()

    init(registry: PrometheusCollectorRegistry, logger: Logger) {
        self.logger = logger
        var counters: [Reason: Counter] = [:]
        for reason in Reason.allCases {
            counters[reason] = registry.makeCounter(
                descriptor: ServerMetrics.named("ballot_auth_refusals_total", "Calls refused for their credentials or permissions (Ballot)."),
                labels: [("reason", reason.rawValue)])
        }
        self.counters = counters
    }

    /// Record the refusal `error` is, if it is one: `method` as gRPC names
    /// it, `user` when known (never a token), `remote` the client's address.
    func record(_ error: RPCError, method: String, user: @autoclosure () -> String?, remote: @autoclosure () -> String) {
        guard let reason = Reason(error) else { return }
        counters[reason]?.increment()
        let (logs, unlogged) = budget.spend()
        guard logs else { return }
        var metadata: Logger.Metadata = [
            "reason": "\(reason.rawValue)", "method": "\(method)", "user": "\(user() ?? "")", "remote": "\(remote())",
        ]
        if unlogged > 0 { metadata["unlogged-before"] = "\(unlogged)" }
        logger.warning("auth: refused a call", metadata: metadata)
    }

    /// The user a JWT names, read without checking it: only for the audit
    /// of a call refused after its token was checked (a permission denial).
    static func jwtUser(_ token: String) -> String? {
        let parts = token.split(separator: ".")
        guard parts.count == 3 else { return nil }
        var payload = String(parts[1]).replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while payload.count % 4 != 0 { payload += "=" }
        guard let data = Data(base64Encoded: payload),
              let claims = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return claims["username"] as? String
    }
}
