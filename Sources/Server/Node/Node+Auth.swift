import Consensus
import GRPCCore
import EtcdAPI
import StateMachine

/// Who is calling, as etcd's AuthInfoFromCtx finds out: the request's
/// token (`RequestCredentials`), which must name a live simple token; no
/// token, the common name of the client's verified certificate under
/// `--client-cert-auth`; neither, nobody (refused by every check while auth
/// is enabled).
extension Node {
    /// The caller of the request this task serves; nil without credentials.
    /// A token is judged once the entry that assigned it is applied here.
    func caller() async throws -> AuthStore.Caller? {
        guard let token = RequestCredentials.token else {
            // etcd's --client-cert-auth: the verified certificate's common
            // name is the user of a call without a token.
            guard let name = RequestCredentials.commonName else { return nil }
            return AuthStore.Caller(username: name, revision: auth.currentRevision)
        }
        if let jwt {
            // A JWT carries the revision it was issued at.
            guard let claims = await (try await jwt.value).claims(of: token) else { throw EtcdError.auth(.invalidAuthToken) }
            return AuthStore.Caller(username: claims.username, revision: claims.revision)
        }
        if let caller = try known(token) { return caller }
        // Wait for the entry that assigned it only if it can exist: a made-up
        // index far past the log would hold a waiter (and the store's commit
        // batching) for the whole request timeout.
        let now = status
        if let index = SimpleTokens.index(of: token), LogIndex(index) > now.appliedIndex,
           index <= now.commitIndex.rawValue + SimpleTokens.indexLeadMax {
            try await waitApplied(LogIndex(index))
            if let caller = try known(token) { return caller }
        }
        throw EtcdError.auth(.invalidAuthToken)
    }

    private func known(_ token: String) throws -> AuthStore.Caller? {
        // Simple tokens carry no revision: the auth store's, read before the
        // token, as the applier forgets tokens before it moves the revision:
        // a token forgotten meanwhile is either gone or judged old.
        let revision = auth.currentRevision
        guard let username = tokens.user(of: token) else { return nil }
        return AuthStore.Caller(username: username, revision: revision)
    }

    /// The caller, as a proposed command carries it for every member's check.
    func authHeader() async throws -> Ballotpb_AuthHeader? {
        try await caller().map(Self.header)
    }

    static func header(_ caller: AuthStore.Caller) -> Ballotpb_AuthHeader {
        var header = Ballotpb_AuthHeader()
        header.username = caller.username
        header.authRevision = caller.revision
        return header
    }

    /// A command carrying `caller`, if any, for every member's permission check.
    func command(by caller: AuthStore.Caller?) -> Ballotpb_Command {
        var command = Ballotpb_Command()
        if let caller { command.authHeader = Self.header(caller) }
        return command
    }

    /// Give `audit` a call that ended with `error`, if it is a refusal, with
    /// who made it by the credentials it carried: never from a token refused
    /// as invalid; a JWT's user read without checking it again (the call got
    /// past its check to be refused for its permissions).
    func auditRefusal(_ error: RPCError, method: String, token: String?, commonName: String?, remote: @autoclosure () -> String) {
        audit.record(error, method: method, user: auditedUser(token: token, commonName: commonName, refused: error), remote: remote())
    }

    private func auditedUser(token: String?, commonName: String?, refused error: RPCError) -> String? {
        guard let token else { return commonName }
        if AuthAudit.Reason(error) == .invalidToken { return nil }
        return jwt == nil ? tokens.user(of: token) : AuthAudit.jwtUser(token)
    }

    /// Who is calling, when that is known at once (no credentials, a
    /// certificate, a simple token this member holds): the fast path's
    /// `caller()`. Otherwise (a JWT, whose keys are an actor's; a token this
    /// member may not have applied yet) the call takes the task's way.
    enum ImmediateCaller {
        case known(AuthStore.Caller?)
        case undecided
    }

    func callerNow(token: String?, commonName: String?) -> ImmediateCaller {
        guard let token else {
            return .known(commonName.map { AuthStore.Caller(username: $0, revision: auth.currentRevision) })
        }
        let revision = auth.currentRevision
        guard jwt == nil, let username = tokens.user(of: token) else { return .undecided }
        return .known(AuthStore.Caller(username: username, revision: revision))
    }

    /// Refuse a read of `[key, rangeEnd)` the caller may not make.
    func checkRead(_ caller: AuthStore.Caller?, key: [UInt8], rangeEnd: [UInt8]) throws {
        let refusal = try read { _ in auth.check(caller ?? .nobody, key: key, rangeEnd: rangeEnd, writing: false) }
        if let refusal { throw EtcdError.auth(refusal) }
    }

    /// Refuse the caller unless it holds the root role (or auth is off).
    func checkAdmin(_ caller: AuthStore.Caller?) throws {
        let refusal = try read { _ in auth.checkAdmin(caller ?? .nobody) }
        if let refusal { throw EtcdError.auth(refusal) }
    }

    /// Whether a request must go the way that judges credentials: auth is
    /// enabled, or it carries a token (which etcd judges even with auth off).
    func needsCredentials(token: String?) -> Bool {
        token != nil || auth.isEnabled
    }
}
