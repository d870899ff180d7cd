import Foundation
@testable import Server
import Testing

/// etcd's command line, read as etcd reads it (Go's flag package, then
/// ETCD_* variables), and turned into a member's configuration.
@Suite struct EtcdCommandLineTests {
    @Test func goFlagFormsAndBooleans() throws {
        let flags = try EtcdCommandLine(
            arguments: ["-name", "a", "--data-dir=/d", "--strict-reconfig-check", "--pre-vote=false", "-snapshot-count=10", "--debug"],
            environment: [:])
        #expect(flags.string("name") == "a")
        #expect(flags.string("data-dir") == "/d")
        #expect(flags.bool("strict-reconfig-check"))
        #expect(!flags.bool("pre-vote"))
        #expect(try flags.integer("snapshot-count") == 10)
        #expect(flags.bool("debug"))
        #expect(flags.string("initial-cluster-token") == "etcd-cluster", "etcd's defaults fill the rest")
        #expect(flags.request == .run)
    }

    @Test func everyFlagOfEtcdIsKnown() throws {
        // Each flag of `etcd --help` (3.4) is accepted at its default.
        for flag in EtcdFlag.all {
            let value = flag.kind == .bool ? "--\(flag.name)=\(flag.defaultValue)" : "--\(flag.name)=\(flag.defaultValue)"
            let parsed = try EtcdCommandLine(arguments: [value], environment: [:])
            #expect(parsed.given.contains(flag.name))
            #expect(parsed.notices.isEmpty, "\(flag.name) at its default says nothing")
        }
        #expect(EtcdFlag.all.count >= 80)
        #expect(Set(EtcdFlag.all.map(\.name)).count == EtcdFlag.all.count)
    }

    @Test func flagsWithoutEffectSayItAndUnsupportedOnesAreRefusedWithAReason() throws {
        let flags = try EtcdCommandLine(
            arguments: ["--enable-pprof", "--logger=zap", "--experimental-initial-corrupt-check=true"], environment: [:])
        #expect(flags.notices.count == 3)
        #expect(flags.notices.contains { $0.hasPrefix("--enable-pprof has no effect") })
        #expect(throws: ConfigError.self) { try EtcdCommandLine(arguments: ["--client-cert-allowed-hostname", "example.com"], environment: [:]) }
        #expect(throws: ConfigError.self) { try EtcdCommandLine(arguments: ["--discovery", "https://x"], environment: [:]) }
        // v2 is not served; etcd's own sample configuration turns it on, so it is accepted and said to do nothing.
        #expect(try EtcdCommandLine(arguments: ["--enable-v2"], environment: [:]).notices.contains { $0.hasPrefix("--enable-v2 has no effect") })
        do {
            _ = try EtcdCommandLine(arguments: ["--wal-dir", "/w"], environment: [:])
            Issue.record("--wal-dir was accepted")
        } catch {
            #expect(error.description.contains("--data-dir/wal"), "the refusal names what to do")
        }
    }

    @Test func badCommandLinesGetEtcdsWords() {
        func message(_ arguments: [String], _ environment: [String: String] = [:]) -> String {
            do {
                _ = try EtcdCommandLine(arguments: arguments, environment: environment)
                return "accepted"
            } catch { return error.description }
        }
        #expect(message(["--no-such-flag"]) == "flag provided but not defined: -no-such-flag")
        #expect(message(["--name"]) == "flag needs an argument: -name")
        #expect(message(["stray"]) == "'stray' is not a valid flag")
        #expect(message(["--pre-vote=maybe"]) == "invalid boolean value \"maybe\" for -pre-vote: parse error")
        #expect(message(["--name", "a"], ["ETCD_NAME": "b"]).hasPrefix("conflicting environment variable \"ETCD_NAME\" is shadowed"))
        var config: String {
            do {
                _ = try ServerConfig(etcd: try EtcdCommandLine(arguments: ["--listen-client-urls", "http://0.0.0.0:2379"], environment: [:]))
                return "accepted"
            } catch { return error.description }
        }
        #expect(config == "--advertise-client-urls is required when --listen-client-urls is set explicitly")
    }

    @Test func environmentFillsWhatTheCommandLineLeaves() throws {
        let flags = try EtcdCommandLine(arguments: ["--name", "a"], environment: ["ETCD_DATA_DIR": "/env", "ETCD_PRE_VOTE": "true", "OTHER": "x"])
        #expect(flags.string("data-dir") == "/env")
        #expect(flags.bool("pre-vote"))
    }

    @Test func configFromFlagsTakesHostNamesAndListsOfURLs() throws {
        let flags = try EtcdCommandLine(arguments: [
            "--name", "m1", "--listen-client-urls", "http://localhost:2379,http://127.0.0.1:12379",
            "--listen-peer-urls", "http://localhost:2380", "--initial-advertise-peer-urls", "http://localhost:2380",
            "--initial-cluster", "m1=http://localhost:2380,m2=http://[::1]:2480", "--advertise-client-urls", "http://localhost:2379",
            "--quota-backend-bytes", "0", "--max-txn-ops", "200", "--log-level", "warn",
        ], environment: [:])
        let config = try ServerConfig(etcd: flags).validated()
        #expect(config.listenClient == [HostPort(host: "localhost", port: 2379), HostPort(host: "127.0.0.1", port: 12379)])
        #expect(config.initialCluster.map(\.peer) == [HostPort(host: "localhost", port: 2380), HostPort(host: "::1", port: 2480)])
        #expect(config.initialCluster[1].peer.url == "http://[::1]:2480")
        #expect(config.quotaBackendBytes == ServerConfig.quotaBackendBytesDefault, "0 means etcd's default quota")
        #expect(config.maxTxnOperations == 200)
        #expect(config.logLevel == .warning)
        #expect(config.dataDirectory == "m1.ballot")
        #expect(config.listenMetrics.isEmpty, "the client URLs serve /metrics; no extra port unless asked")
        // etcd's own defaults start a one-member cluster named default.
        let defaults = try ServerConfig(etcd: try EtcdCommandLine(arguments: [], environment: [:])).validated()
        #expect(defaults.name == "default" && defaults.initialCluster.count == 1)
        #expect(defaults.listenClient == [HostPort(host: "localhost", port: 2379)])
    }

    @Test func aMemberMissingFromItsClusterIsRefused() throws {
        let flags = try EtcdCommandLine(arguments: [
            "--name", "m3", "--initial-advertise-peer-urls", "http://127.0.0.1:2380", "--initial-cluster", "m1=http://127.0.0.1:2380",
        ], environment: [:])
        #expect(throws: ConfigError.self) { try ServerConfig(etcd: flags) }
    }

    @Test func httpsURLsTakeCertificatesOrAutoTLSInEtcdsWords() throws {
        func config(_ extra: [String], client: String = "https://127.0.0.1:2379", peer: String = "https://127.0.0.1:2380") throws -> ServerConfig {
            let flags = try EtcdCommandLine(arguments: [
                "--name", "m1", "--listen-client-urls", client, "--advertise-client-urls", client,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "m1=\(peer)",
            ] + extra, environment: [:])
            return try ServerConfig(etcd: flags).validated()
        }
        func refusal(_ extra: [String], client: String = "https://127.0.0.1:2379", peer: String = "https://127.0.0.1:2380") -> String {
            do {
                _ = try config(extra, client: client, peer: peer)
                return "accepted"
            } catch { return "\(error)" }
        }
        let auto = try config(["--auto-tls", "--peer-auto-tls"])
        #expect(auto.listenClient == [HostPort(host: "127.0.0.1", port: 2379, secure: true)])
        #expect(auto.listenClient[0].url == "https://127.0.0.1:2379")
        #expect(auto.clientTLS.autoTLS && auto.peerTLS.autoTLS && !auto.clientTLS.hasCertificate)
        // As etcd's, a member's ID hashes its whole peer URL, scheme included.
        #expect(auto.memberID != (try config([], client: "http://127.0.0.1:2379", peer: "http://127.0.0.1:2380")).memberID)
        let files = try config(["--cert-file", "c.pem", "--key-file", "k.pem", "--trusted-ca-file", "ca.pem", "--client-cert-auth",
                                "--peer-cert-file", "pc.pem", "--peer-key-file", "pk.pem", "--peer-client-cert-auth"])
        #expect(files.clientTLS.certFile == "c.pem" && files.clientTLS.keyFile == "k.pem" && files.clientTLS.trustedCAFile == "ca.pem")
        #expect(files.clientTLS.clientCertAuth && files.peerTLS.clientCertAuth && files.peerTLS.certFile == "pc.pem")
        #expect(refusal(["--peer-auto-tls"]) == "TLS key/cert (--cert-file, --key-file) must be provided for client url https://127.0.0.1:2379 with HTTPS scheme")
        #expect(refusal(["--auto-tls"]) == "cannot listen on TLS for 127.0.0.1:2380: KeyFile and CertFile are not presented")
        #expect(refusal(["--auto-tls", "--peer-cert-file", "c.pem"]).contains("KeyFile and CertFile must both be present"))
        #expect(refusal([], client: "http://127.0.0.1:2379", peer: "http://127.0.0.1:2380") == "accepted")
    }

    /// The IDs Debian's etcd 3.4 gave this command line (its log: "added
    /// member 7dd3adb99495d7a8 [https://127.0.0.1:42380] to cluster
    /// c31384435471b863"), so the same flags name the same members.
    @Test func memberAndClusterIDsAreEtcds() throws {
        let flags = try EtcdCommandLine(arguments: [
            "--name", "infra0", "--listen-peer-urls", "https://127.0.0.1:42380", "--initial-advertise-peer-urls", "https://127.0.0.1:42380",
            "--initial-cluster", "infra0=https://127.0.0.1:42380,infra1=http://localhost:42390", "--initial-cluster-token", "e2e-tok",
            "--peer-auto-tls",
        ], environment: [:])
        let config = try ServerConfig(etcd: flags).validated()
        #expect(String(config.memberID.rawValue, radix: 16) == "7dd3adb99495d7a8")
        #expect(String(ServerConfig.memberID(peer: config.initialCluster[1].peer, token: "e2e-tok").rawValue, radix: 16) == "416ecc8d38f267b5")
        #expect(String(config.foundingClusterID, radix: 16) == "c31384435471b863")
    }

    /// Unix socket URLs and port 0, as etcd's e2e suite uses them
    /// (TestEtcdUnixPeers, TestEtcdMultiPeer); the member ID etcd 3.4 gives
    /// `unix://etcd.unix:1` (checked against Debian's etcd).
    /// A plaintext peer URL the network can reach needs the flag that says
    /// so; loopback and TLS do not. Client URLs are only warned about:
    /// etcd's own e2e suite listens on http://0.0.0.0 for clients.
    @Test func plaintextPeersOffLoopbackNeedTheFlag() throws {
        func config(peer: String, _ extra: [String] = []) throws -> ServerConfig {
            try ServerConfig(etcd: try EtcdCommandLine(arguments: [
                "--name", "e1", "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", "e1=\(peer)",
                "--listen-client-urls", "http://0.0.0.0:2379", "--advertise-client-urls", "http://10.0.0.1:2379",
            ] + extra, environment: [:])).validated()
        }
        #expect(throws: ConfigError.self) { try config(peer: "http://10.0.0.1:2380") }
        #expect(throws: ConfigError.self) { try config(peer: "http://0.0.0.0:2380") }
        _ = try config(peer: "http://10.0.0.1:2380", ["--allow-plaintext-non-loopback"])
        for loopback in ["http://127.0.0.1:2380", "http://127.3.4.5:2380", "http://localhost:2380", "http://[::1]:2380", "unix://p.sock"] {
            #expect(try HostPort(url: loopback).isLoopback, "\(loopback)")
            _ = try config(peer: loopback)
        }
        #expect(try !HostPort(url: "http://[::]:1").isLoopback && !HostPort(url: "http://127.example.com:1").isLoopback)
        #expect(try !HostPort(url: "https://10.0.0.1:2380").isPlaintextOnNetwork)
        // A peer secret is 16 to 4096 bytes.
        #expect(throws: ConfigError.self) { try PeerSecret(bytes: Array(repeating: UInt8(1), count: 15)) }
        _ = try PeerSecret(bytes: Array(repeating: UInt8(1), count: 16))
        #expect(throws: ConfigError.self) { try PeerSecret.load(path: "/nonexistent/secret") }
    }

    @Test func unixSocketsAndAnyPortAreURLs() throws {
        let unix = try HostPort(url: "unix://etcd.unix:1")
        #expect(unix.unixSocket && unix.host == "etcd.unix:1" && unix.port == 0 && !unix.secure)
        #expect(unix.url == "unix://etcd.unix:1")
        #expect(try HostPort(url: "unixs://a.sock").url == "unixs://a.sock")
        #expect(try HostPort(url: "unixs://a.sock").secure)
        #expect(throws: ConfigError.self) { try HostPort(url: "unix://") }
        let any = try HostPort(url: "http://0.0.0.0:0")
        #expect(any.port == 0 && any.url == "http://0.0.0.0:0")
        #expect(throws: ConfigError.self) { try HostPort(url: "http://127.0.0.1:65536") }
        let flags = try EtcdCommandLine(arguments: [
            "--name", "e1", "--listen-peer-urls", "unix://etcd.unix:1", "--initial-advertise-peer-urls", "unix://etcd.unix:1",
            "--initial-cluster", "e1=unix://etcd.unix:1",
        ], environment: [:])
        #expect(String(try ServerConfig(etcd: flags).validated().memberID.rawValue, radix: 16) == "b16965eda2672782")
    }

    /// etcd's YAML configuration file replaces the command line and the
    /// environment; etcd's own sample (with its TLS sections) loads.
    @Test func aConfigFileInEtcdsYAMLReplacesFlagsAndEnvironment() throws {
        let path = NSTemporaryDirectory() + "ballot-config-" + UUID().uuidString + ".yml"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try """
            # as etcd.conf.yml.sample writes it
            name: 'm1'
            data-dir:
            wal-dir:
            snapshot-count: 10000
            heartbeat-interval: 100
            election-timeout: 1000
            listen-peer-urls: https://127.0.0.1:2380
            listen-client-urls: http://localhost:2379,http://127.0.0.1:12379
            advertise-client-urls: http://localhost:2379
            initial-advertise-peer-urls: https://127.0.0.1:2380
            initial-cluster: m1=https://127.0.0.1:2380
            initial-cluster-token: 'tok'
            initial-cluster-state: 'new'
            discovery:
            discovery-fallback: 'proxy'
            proxy: 'off'
            enable-v2: true
            client-transport-security:
              cert-file:
              client-cert-auth: false
              auto-tls: false
            peer-transport-security:
              trusted-ca-file: /etc/ca.pem
              auto-tls: true
            log-outputs: [stderr]
            auto-compaction-mode: periodic
            auto-compaction-retention: "1"
            not-an-etcd-setting: 3
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let flags = try EtcdCommandLine(arguments: ["--config-file", path, "--name", "ignored"], environment: ["ETCD_SNAPSHOT_COUNT": "5"])
        let config = try ServerConfig(etcd: flags).validated()
        #expect(config.name == "m1" && config.dataDirectory == "m1.ballot")
        #expect(config.snapshotCount == 10_000, "the environment is ignored")
        #expect(config.listenClient == [HostPort(host: "localhost", port: 2379), HostPort(host: "127.0.0.1", port: 12379)])
        #expect(config.peerTLS.autoTLS && config.peerTLS.trustedCAFile == "/etc/ca.pem" && !config.clientTLS.autoTLS)
        #expect(config.clusterToken == "tok")
        #expect(flags.notices.contains { $0.hasPrefix("--enable-v2 has no effect") })
        try "name: m1\ndiscovery: https://discovery.etcd.io/x\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self, "a refused setting is refused from the file too") {
            try EtcdCommandLine(arguments: ["--config-file", path], environment: [:])
        }
        try "name: [unclosed\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigError.self) { try EtcdCommandLine(arguments: ["--config-file", path], environment: [:]) }
    }
}
