import Foundation

/// etcd's command line as etcd reads it (Go's `flag` package, then the
/// environment): `-flag value`, `--flag value`, `--flag=value`; a boolean
/// flag alone means true and takes a value only after `=`; a flag not on
/// the command line is read from its `ETCD_…` variable; a variable that
/// shadows a flag given on the command line is refused, as etcd does.
public struct EtcdCommandLine: Sendable {
    /// Every flag's value: the command line's, else the environment's, else etcd's default.
    public private(set) var values: [String: String]
    /// Flags the command line or the environment set.
    public private(set) var given: Set<String>
    /// One line for each flag given that has no effect here.
    public private(set) var notices: [String] = []

    static let byName: [String: EtcdFlag] = Dictionary(uniqueKeysWithValues: EtcdFlag.all.map { ($0.name, $0) })

    /// What was asked instead of running a member.
    public enum Request: Sendable, Equatable {
        case run
        case help
        case version
    }

    public private(set) var request = Request.run

    public init(arguments: [String], environment: [String: String]) throws(ConfigError) {
        var values: [String: String] = [:]
        var given = Set<String>()
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            index += 1
            guard argument.hasPrefix("-"), argument != "-", argument != "--" else {
                throw .invalid("'\(argument)' is not a valid flag")
            }
            var body = argument.dropFirst(argument.hasPrefix("--") ? 2 : 1)
            var inline: String?
            if let equals = body.firstIndex(of: "=") {
                inline = String(body[body.index(after: equals)...])
                body = body[..<equals]
            }
            let name = String(body)
            if name == "h" || name == "help" {
                request = .help
                continue
            }
            if name == "version" {
                request = .version
                continue
            }
            guard let flag = Self.byName[name] else { throw .invalid("flag provided but not defined: -\(name)") }
            let value: String
            if let inline {
                value = inline
            } else if flag.kind == .bool {
                value = "true"
            } else {
                guard index < arguments.count else { throw .invalid("flag needs an argument: -\(name)") }
                value = arguments[index]
                index += 1
            }
            if flag.kind == .bool, Self.boolean(value) == nil {
                throw .invalid("invalid boolean value \"\(value)\" for -\(name): parse error")
            }
            values[name] = value
            given.insert(name)
        }
        for flag in EtcdFlag.all {
            guard let value = environment[flag.environmentName] else { continue }
            if given.contains(flag.name) {
                throw .invalid(
                    "conflicting environment variable \"\(flag.environmentName)\" is shadowed by corresponding command-line flag (either unset environment variable or disable flag)")
            }
            if flag.kind == .bool, Self.boolean(value) == nil {
                throw .invalid("invalid value \"\(value)\" for \(flag.environmentName): parse error")
            }
            values[flag.name] = value
            given.insert(flag.name)
        }
        if request == .run, let path = values["config-file"], !path.isEmpty {
            // etcd's rule: a configuration file replaces the command line and the environment.
            (values, given) = try EtcdConfigFile.load(path)
            notices.append("loaded the configuration from \(path); other command-line flags and environment variables are ignored")
        }
        for flag in EtcdFlag.all where values[flag.name] == nil {
            values[flag.name] = flag.defaultValue
        }
        self.values = values
        self.given = given
        for name in given.sorted() {
            let flag = Self.byName[name]!
            guard !Self.isDefault(flag, values[name]!) else { continue }
            switch flag.support {
            case .used: break
            case .noEffect(let why): notices.append("--\(name) has no effect: \(why)")
            case .refused(let why): throw .invalid("--\(name) is not supported: \(why)")
            }
        }
    }

    /// Whether a value means the same as etcd's default (booleans by value).
    static func isDefault(_ flag: EtcdFlag, _ value: String) -> Bool {
        if flag.kind == .bool { return boolean(value) == boolean(flag.defaultValue) }
        return value == flag.defaultValue
    }

    /// Go's strconv.ParseBool.
    static func boolean(_ text: String) -> Bool? {
        switch text {
        case "1", "t", "T", "TRUE", "true", "True": true
        case "0", "f", "F", "FALSE", "false", "False": false
        default: nil
        }
    }

    public func string(_ name: String) -> String {
        precondition(Self.byName[name] != nil, "no flag --\(name)")
        return values[name]!
    }

    public func bool(_ name: String) -> Bool {
        precondition(Self.byName[name]?.kind == .bool, "--\(name) is not a boolean flag")
        return Self.boolean(values[name]!)!
    }

    public func integer(_ name: String) throws(ConfigError) -> Int {
        guard let value = Int(string(name)) else {
            throw .invalid("invalid value \"\(string(name))\" for flag -\(name): parse error")
        }
        return value
    }

    /// A comma-separated list, empty entries dropped.
    public func list(_ name: String) -> [String] {
        string(name).split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// etcd's usage text, built from the same table.
    public static var usage: String {
        var text = """
            Usage:

              ballot [flags]
                Start a Ballot member. Flags are etcd 3.4's; each reads its ETCD_* variable when not given.

              ballot dev
                Start a local 3-member cluster.

              ballot --version
                Show the version.

            Flags:

            """
        for flag in EtcdFlag.all {
            text += "  --\(flag.name) '\(flag.defaultValue)'\n    \(flag.help)\n"
            switch flag.support {
            case .used: break
            case .noEffect(let why): text += "    (accepted; no effect: \(why))\n"
            case .refused(let why): text += "    (refused: \(why))\n"
            }
        }
        return text
    }
}
