import ArgumentParser
import Client
import EtcdAPI
import Foundation

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Get a key, or the keys under a prefix.")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var read: ConsistencyOptions
    @Argument(help: "The key (or the prefix, with --prefix).") var key: String
    @Flag(help: "Every key starting with KEY.") var prefix = false
    @Flag(help: "Print values only.") var printValueOnly = false

    func run() async throws {
        let level = try read.level()
        try await global.withClient { [self] client in
            var request = Etcdserverpb_RangeRequest()
            request.key = Data(key.utf8)
            if prefix { request.rangeEnd = KeyPrefix.rangeEnd(Data(key.utf8)) }
            let response = try await client.range(request, consistency: level)
            switch global.output {
            case .json: print(try Output.json(response))
            case .table:
                print(Output.table(["KEY", "VALUE", "CREATE", "MOD", "VERSION", "LEASE"], response.kvs.map {
                    [String(decoding: $0.key, as: UTF8.self), String(decoding: $0.value, as: UTF8.self), "\($0.createRevision)", "\($0.modRevision)",
                     "\($0.version)", $0.lease == 0 ? "" : Output.hex(UInt64(bitPattern: $0.lease))]
                }))
            case .simple:
                for kv in response.kvs {
                    if !printValueOnly { print(String(decoding: kv.key, as: UTF8.self)) }
                    print(String(decoding: kv.value, as: UTF8.self))
                }
            }
        }
    }
}

struct Put: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Put a value at a key.")
    @OptionGroup var global: GlobalOptions
    @Argument var key: String
    @Argument var value: String
    @Option(help: "A lease ID (hex) to attach the key to.") var lease: String?

    func run() async throws {
        guard let leaseID = Int64(lease ?? "0", radix: 16) else { throw ValidationError("--lease is a hex lease ID") }
        try await global.withClient { [self] client in
            let revision = try await client.put(key, value, lease: leaseID)
            print(global.output == .json ? #"{"revision":\#(revision)}"# : "OK")
        }
    }
}

struct Del: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete a key, or the keys under a prefix.")
    @OptionGroup var global: GlobalOptions
    @Argument var key: String
    @Flag(help: "Every key starting with KEY.") var prefix = false

    func run() async throws {
        try await global.withClient { [self] client in
            print(try await client.delete(key, prefix: prefix))
        }
    }
}

/// etcdctl's interactive txn, read from standard input: compares, a blank
/// line, the operations on success, a blank line, those on failure.
/// Compares: `mod("k") = "5"`, `create("k") > "0"`, `version("k") < "3"`,
/// `value("k") = "v"`; operations: `put k v`, `get k`, `del k`.
struct Txn: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A transaction from standard input, in etcdctl's interactive syntax.")
    @OptionGroup var global: GlobalOptions

    func run() async throws {
        var lines: [String] = []
        while let line = readLine() { lines.append(line) }
        let request = try TxnParser.parse(lines)
        try await global.withClient { [self] client in
            let response = try await client.txn(request)
            if global.output == .json {
                print(try Output.json(response))
                return
            }
            print(response.succeeded ? "SUCCESS" : "FAILURE")
            for answer in response.responses {
                print("")
                switch answer.response {
                case .responsePut: print("OK")
                case .responseDeleteRange(let deleted): print(deleted.deleted)
                case .responseRange(let range):
                    for kv in range.kvs { print(String(decoding: kv.key, as: UTF8.self)); print(String(decoding: kv.value, as: UTF8.self)) }
                case .responseTxn, nil: break
                }
            }
        }
    }
}

enum TxnParser {
    static func parse(_ lines: [String]) throws -> Etcdserverpb_TxnRequest {
        var sections: [[String]] = [[]]
        for line in lines.map({ $0.trimmingCharacters(in: .whitespaces) }) {
            if line.isEmpty { sections.append([]) } else { sections[sections.count - 1].append(line) }
        }
        while sections.count < 3 { sections.append([]) }
        guard sections.count == 3 || sections[3...].allSatisfy(\.isEmpty) else { throw ValidationError("a txn has three sections: compares, success, failure") }
        var request = Etcdserverpb_TxnRequest()
        request.compare = try sections[0].map(compare)
        request.success = try sections[1].map(operation)
        request.failure = try sections[2].map(operation)
        return request
    }

    static func compare(_ line: String) throws -> Etcdserverpb_Compare {
        let pattern = #"^(mod|create|version|value)\("([^"]*)"\)\s*(=|!=|<|>)\s*"([^"]*)"$"#
        guard let match = line.range(of: pattern, options: .regularExpression), match == line.startIndex..<line.endIndex else {
            throw ValidationError("bad compare \(line): e.g. mod(\"k\") = \"5\"")
        }
        let parts = line.split(separator: "\"", omittingEmptySubsequences: false).map(String.init)
        let target = String(line.prefix { $0 != "(" })
        let op = parts[2].trimmingCharacters(in: CharacterSet(charactersIn: ") "))
        var compare = Etcdserverpb_Compare()
        compare.key = Data(parts[1].utf8)
        compare.result = switch op { case "=": .equal; case "!=": .notEqual; case "<": .less; default: .greater }
        let operand = parts[3]
        func number() throws -> Int64 {
            guard let value = Int64(operand) else { throw ValidationError("bad compare \(line): \(target) takes a number") }
            return value
        }
        switch target {
        case "mod": compare.target = .mod; compare.modRevision = try number()
        case "create": compare.target = .create; compare.createRevision = try number()
        case "version": compare.target = .version; compare.version = try number()
        default: compare.target = .value; compare.value = Data(operand.utf8)
        }
        return compare
    }

    static func operation(_ line: String) throws -> Etcdserverpb_RequestOp {
        let words = line.split(separator: " ", maxSplits: 2).map(String.init)
        var operation = Etcdserverpb_RequestOp()
        switch (words.first, words.count) {
        case ("put", 3):
            var put = Etcdserverpb_PutRequest()
            put.key = Data(words[1].utf8)
            put.value = Data(words[2].utf8)
            operation.requestPut = put
        case ("get", 2):
            var range = Etcdserverpb_RangeRequest()
            range.key = Data(words[1].utf8)
            operation.requestRange = range
        case ("del", 2):
            var delete = Etcdserverpb_DeleteRangeRequest()
            delete.key = Data(words[1].utf8)
            operation.requestDeleteRange = delete
        default:
            throw ValidationError("bad operation \(line): put KEY VALUE, get KEY or del KEY")
        }
        return operation
    }
}

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print changes to a key or prefix until interrupted (resuming on another member if one fails).")
    @OptionGroup var global: GlobalOptions
    @Argument var key: String
    @Flag(help: "Every key starting with KEY.") var prefix = false
    @Option(help: "Start at this revision.") var rev: Int64?
    @Option(help: "Stop after this many events.") var count: Int?

    func run() async throws {
        try await global.withClient { [self] client in
            var seen = 0
            for try await event in client.watch(key, prefix: prefix, startRevision: rev) {
                print(event.kind == .put ? "PUT" : "DELETE")
                print(event.keyValue.key)
                if event.kind == .put { print(event.keyValue.value) }
                // Out at once, also into a pipe: a watch prints as it goes.
                fflush(nil)
                seen += 1
                if let count, seen >= count { return }
            }
        }
    }
}
