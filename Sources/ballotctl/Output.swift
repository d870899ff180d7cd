import ArgumentParser
import Client
import Foundation
import GRPCCore
import SwiftProtobuf

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case simple, json, table
}

/// How ballotctl prints: etcdctl's simple lines, protobuf's JSON of the
/// response, or a bordered table (etcdctl's tablewriter look).
enum Output {
    static func json(_ message: some SwiftProtobuf.Message) throws -> String {
        var options = JSONEncodingOptions()
        options.alwaysPrintInt64sAsNumbers = true
        return try message.jsonString(options: options)
    }

    /// A table with a header row, every cell padded to its column's width.
    static func table(_ header: [String], _ rows: [[String]]) -> String {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        let rule = "+" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "+") + "+"
        func line(_ cells: [String]) -> String {
            "|" + cells.enumerated().map { " " + $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) + " " }.joined(separator: "|") + "|"
        }
        return ([rule, line(header), rule] + rows.map(line) + [rule]).joined(separator: "\n")
    }

    /// A refusal as etcdctl words it: the member's message.
    static func describe(_ error: any Error) -> String {
        if let error = error as? RPCError { return error.message.isEmpty ? "\(error.code)" : error.message }
        return "\(error)"
    }

    static func hex(_ id: UInt64) -> String { String(id, radix: 16) }

    static func bytes(_ count: UInt64) -> String {
        let units = ["B", "kB", "MB", "GB", "TB"]
        var value = Double(count)
        var unit = 0
        while value >= 1000 && unit < units.count - 1 {
            value /= 1000
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }
}

/// A progress bar on standard error, redrawn in place on a terminal and
/// printed every tenth otherwise (a log keeps ten lines, not thousands).
final class ProgressBar: @unchecked Sendable {
    private let label: String
    private let format: (UInt64) -> String
    private let lock = NSLock()
    private var lastTenth = -1
    private let terminal = isatty(STDERR_FILENO) == 1
    static let width = 30

    init(_ label: String, format: @escaping (UInt64) -> String = Output.bytes) {
        self.label = label
        self.format = format
    }

    func update(done: UInt64, total: UInt64) {
        let fraction = total == 0 ? 1 : min(1, Double(done) / Double(total))
        let tenth = Int(fraction * 10)
        lock.lock()
        defer { lock.unlock() }
        if !terminal && tenth == lastTenth { return }
        lastTenth = tenth
        let filled = Int(fraction * Double(Self.width))
        let bar = String(repeating: "#", count: filled) + String(repeating: " ", count: Self.width - filled)
        let text = "\(label) [\(bar)] \(Int(fraction * 100))% \(format(done)) of \(format(total))"
        FileHandle.standardError.write(Data((terminal ? "\r" + text : text + "\n").utf8))
    }

    func finish() {
        if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
