import NIOCore

/// Cuts a gRPC request stream's bytes into messages: each is a one-byte
/// compression flag, a four-byte big-endian length and that many bytes.
/// Holds at most one message's bytes (up to the limit) at a time.
struct GRPCMessageReader {
    enum Failure: Error, Equatable {
        /// A message longer than the limit (grpc-go's wording, as etcd's clients see it).
        case tooLarge(length: Int, limit: Int)
        /// A compressed message: Ballot announces no compression, so none may come.
        case compressed
    }

    let maxMessageBytes: Int
    private var buffered: ByteBuffer?

    init(maxMessageBytes: Int) {
        precondition(maxMessageBytes > 0, "a message limit is positive")
        self.maxMessageBytes = maxMessageBytes
    }

    /// Bytes received that do not yet make a whole message.
    var hasPartialMessage: Bool { (buffered?.readableBytes ?? 0) > 0 }

    /// Take in `bytes`; return the messages they complete, in order.
    mutating func append(_ bytes: ByteBuffer) throws(Failure) -> [[UInt8]] {
        if buffered == nil || buffered!.readableBytes == 0 {
            buffered = bytes
        } else {
            var more = bytes
            buffered!.writeBuffer(&more)
        }
        var messages: [[UInt8]] = []
        while let message = try next() { messages.append(message) }
        if buffered?.readableBytes == 0 { buffered = nil }
        return messages
    }

    private mutating func next() throws(Failure) -> [UInt8]? {
        guard var buffer = buffered, buffer.readableBytes >= 5,
              let flag = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
              let length = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt32.self) else { return nil }
        guard flag == 0 else { throw .compressed }
        guard Int(length) <= maxMessageBytes else { throw .tooLarge(length: Int(length), limit: maxMessageBytes) }
        guard buffer.readableBytes >= 5 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 5)
        let message = buffer.readBytes(length: Int(length))!
        buffered = buffer
        return message
    }
}
