import Foundation

/// One flag of etcd 3.4's command line (`etcd --help`), and what Ballot
/// does with it, so that a deployment's etcd command line starts a Ballot
/// member unchanged, or is refused with a reason naming what to use.
public struct EtcdFlag: Sendable {
    public enum Kind: Sendable {
        case string
        /// Go's boolean flag: `--flag` alone means true; a value only after `=`.
        case bool
        case integer
        /// A Go duration (`10s`, `1h30m`) or, where etcd says so, a bare number.
        case duration
    }

    /// What a flag does here.
    public enum Support: Sendable {
        /// Ballot implements it.
        case used
        /// Accepted; a non-default value logs one line saying it has no effect, and why.
        case noEffect(String)
        /// A non-default value is refused with this message (what to use instead).
        case refused(String)
    }

    public var name: String
    public var kind: Kind
    /// etcd's default, as etcd's help shows it ("" for none).
    public var defaultValue: String
    public var support: Support
    public var help: String

    /// The environment variable etcd reads for it: ETCD_ and the name in
    /// capitals with underscores (`--data-dir` → `ETCD_DATA_DIR`).
    public var environmentName: String {
        "ETCD_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    init(_ name: String, _ kind: Kind = .string, _ defaultValue: String = "", _ support: Support = .used, _ help: String) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.support = support
        self.help = help
    }
}
