import Foundation
import Glibc
import Testing

/// etcd's URL forms beyond host:port: Unix sockets for peers and clients
/// (`unix://name`, the socket `name` in the working directory, as etcd's
/// TestEtcdUnixPeers uses it) and several peer URLs per member
/// (TestEtcdMultiPeer), with the cluster formed and serving across them.
@Suite(.serialized) struct SocketURLTests {
    @Test func membersTalkOverUnixSocketsAndListenOnSeveralPeerURLs() throws {
        let directory = NSTemporaryDirectory() + "ballot-unix-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ports = try TestCluster.freePorts(6)
        let cluster = (1...3).map { "m\($0)=unix://p\($0).sock" }.joined(separator: ",")
        var processes: [Process] = []
        defer {
            for process in processes where process.isRunning { kill(process.processIdentifier, SIGKILL) }
            for process in processes { process.waitUntilExit() }
        }
        for i in 1...3 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: TestCluster.binary)
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
            process.arguments = [
                "--name", "m\(i)", "--data-dir", "m\(i)",
                "--listen-peer-urls", "unix://p\(i).sock,http://127.0.0.1:\(ports[i - 1])",
                "--initial-advertise-peer-urls", "unix://p\(i).sock", "--initial-cluster", cluster,
                "--listen-client-urls", "unix://c\(i).sock,http://127.0.0.1:\(ports[i + 2])",
                "--advertise-client-urls", "http://127.0.0.1:\(ports[i + 2])",
            ]
            process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
            process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: "\(directory)/m\(i).log").creatingFile())
            try process.run()
            processes.append(process)
        }
        func etcdctl(_ arguments: String) throws -> TestCluster.Output {
            try TestCluster.run("/bin/sh", ["-c", "cd \(directory) && ETCDCTL_API=3 etcdctl --command-timeout=5s \(arguments)"], timeout: 15)
        }
        // A write through one member's Unix client socket, once the cluster
        // has formed over the Unix peer sockets.
        var put = try etcdctl("--endpoints unix://c1.sock put sock/a 1")
        let deadline = Date().addingTimeInterval(20)
        while put.status != 0 && Date() < deadline {
            usleep(200_000)
            put = try etcdctl("--endpoints unix://c1.sock put sock/a 1")
        }
        let logs = (1...3).map { (try? String(contentsOfFile: "\(directory)/m\($0).log", encoding: .utf8)) ?? "" }.joined(separator: "\n")
        try #require(put.status == 0, "\(put.stderr)\n\(logs)")
        // Read back through another member's TCP client URL.
        let get = try etcdctl("--endpoints 127.0.0.1:\(ports[5]) get sock/a --print-value-only")
        #expect(get.stdout == "1\n", "\(get.stderr)")
        let members = try etcdctl("--endpoints unix://c2.sock member list")
        #expect(members.stdout.contains("unix://p1.sock") && members.stdout.split(separator: "\n").count == 3, "\(members.stdout)")
        // The second peer URL of each member listens too.
        for port in ports[0..<3] {
            let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(probe) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            #expect(connected == 0, "nothing listens on peer port \(port)")
        }
    }
}

private extension URL {
    func creatingFile() throws -> URL {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        return self
    }
}
