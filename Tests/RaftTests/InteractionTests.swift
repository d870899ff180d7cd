import Foundation
import Testing

/// Runs every scenario in `testdata/`: each block is a command, `----`, and
/// the exact output it must print. `BALLOT_REWRITE=1 swift test` rewrites
/// the expectations from the current behaviour; review the diff.
@Suite struct InteractionTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("testdata")

    static var files: [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory.path))?.filter { $0.hasSuffix(".txt") }.sorted() ?? []
    }

    @Test func scenariosExist() {
        #expect(Self.files.count >= 10, "testdata/ should hold a scenario per feature")
    }

    @Test(arguments: files)
    func scenario(_ file: String) throws {
        let url = Self.directory.appendingPathComponent(file)
        let text = try String(contentsOf: url, encoding: .utf8)
        let blocks = try DataDrivenFile.parse(text)
        var env = InteractionEnvironment()
        var rewritten: [String] = []
        for block in blocks {
            let got = try env.run(block.command)
            if ProcessInfo.processInfo.environment["BALLOT_REWRITE"] == "1" {
                rewritten.append(block.rendered(output: got))
            } else {
                #expect(got == block.expected, "\(file):\(block.line): \(block.command)\n--- got ---\n\(got)\n--- want ---\n\(block.expected)")
            }
        }
        if ProcessInfo.processInfo.environment["BALLOT_REWRITE"] == "1" {
            try rewritten.joined(separator: "\n").write(to: url, atomically: true, encoding: .utf8)
        }
    }
}

/// The file format: comment lines (`#`), a command line, `----`, then the
/// expected output up to a blank line.
struct DataDrivenFile {
    struct Block {
        var comments: [String]
        var command: String
        var expected: String
        var line: Int

        func rendered(output: String) -> String {
            (comments + [command, "----", output]).joined(separator: "\n") + "\n"
        }
    }

    static func parse(_ text: String) throws -> [Block] {
        var blocks: [Block] = []
        let lines = text.components(separatedBy: "\n")
        var i = 0
        var comments: [String] = []
        while i < lines.count {
            let line = lines[i]
            if line.trimmingCharacters(in: .whitespaces).isEmpty { i += 1; continue }
            if line.hasPrefix("#") { comments.append(line); i += 1; continue }
            let start = i + 1
            guard i + 1 < lines.count, lines[i + 1] == "----" else {
                throw HarnessError("line \(start): expected ---- after command '\(line)'")
            }
            var expected: [String] = []
            var j = i + 2
            while j < lines.count && !lines[j].isEmpty {
                expected.append(lines[j])
                j += 1
            }
            blocks.append(Block(comments: comments, command: line, expected: expected.joined(separator: "\n"), line: start))
            comments = []
            i = j
        }
        return blocks
    }
}
