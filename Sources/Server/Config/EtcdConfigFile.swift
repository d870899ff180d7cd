import Foundation
import Yams

/// etcd's YAML configuration file (`--config-file`): the same settings as
/// the flags, under the flags' names, with the TLS flags nested under
/// `client-transport-security` and `peer-transport-security` as in etcd's
/// `etcd.conf.yml.sample`. Empty values mean the default; lists may be YAML
/// sequences or comma-separated strings; keys that are not etcd settings
/// are ignored, as etcd ignores them.
enum EtcdConfigFile {
    /// The nested TLS keys, and the flag each stands for.
    static let transportSections: [String: [String: String]] = [
        "client-transport-security": [
            "cert-file": "cert-file", "key-file": "key-file", "client-cert-auth": "client-cert-auth",
            "trusted-ca-file": "trusted-ca-file", "auto-tls": "auto-tls", "crl-file": "client-crl-file",
            "allowed-hostname": "client-cert-allowed-hostname",
        ],
        "peer-transport-security": [
            "cert-file": "peer-cert-file", "key-file": "peer-key-file", "client-cert-auth": "peer-client-cert-auth",
            "trusted-ca-file": "peer-trusted-ca-file", "auto-tls": "peer-auto-tls", "crl-file": "peer-crl-file",
            "allowed-cn": "peer-cert-allowed-cn", "allowed-hostname": "peer-cert-allowed-hostname",
        ],
    ]
    /// A configuration file larger than this is not one.
    static let bytesMax = 1 << 20

    /// The flag values the file gives, and which it gives.
    static func load(_ path: String) throws(ConfigError) -> (values: [String: String], given: Set<String>) {
        guard let data = FileManager.default.contents(atPath: path) else { throw .invalid("--config-file: cannot read \(path)") }
        guard data.count <= bytesMax else { throw .invalid("--config-file: \(path) is larger than \(bytesMax) bytes") }
        let root: Any?
        do {
            root = try Yams.load(yaml: String(decoding: data, as: UTF8.self))
        } catch {
            throw .invalid("--config-file: \(path) is not YAML: \(error)")
        }
        guard let settings = root as? [String: Any] else {
            if root == nil { return ([:], []) }
            throw .invalid("--config-file: \(path) is not a mapping of settings")
        }
        var values: [String: String] = [:]
        for (key, value) in settings {
            if let flags = transportSections[key] {
                guard let section = value as? [String: Any] else { continue }
                for (inner, innerValue) in section {
                    guard let name = flags[inner], let text = try scalar(innerValue, key: "\(key).\(inner)") else { continue }
                    values[name] = text
                }
                continue
            }
            guard let flag = EtcdCommandLine.byName[key], key != "config-file" else { continue }
            guard let text = try scalar(value, key: key) else { continue }
            if flag.kind == .bool, EtcdCommandLine.boolean(text) == nil {
                throw .invalid("--config-file: \(key): \"\(text)\" is not a boolean")
            }
            values[key] = text
        }
        return (values, Set(values.keys))
    }

    /// A setting as the flag would spell it; nil for an empty one.
    static func scalar(_ value: Any, key: String) throws(ConfigError) -> String? {
        switch value {
        case is NSNull: return nil
        case let text as String: return text.isEmpty ? nil : text
        case let flag as Bool: return flag ? "true" : "false"
        case let number as Int: return String(number)
        case let number as Double: return String(number)
        case let list as [Any]:
            var items: [String] = []
            for item in list {
                if let text = try scalar(item, key: key) { items.append(text) }
            }
            return items.isEmpty ? nil : items.joined(separator: ",")
        default: throw .invalid("--config-file: \(key) is not a value a flag takes")
        }
    }
}
