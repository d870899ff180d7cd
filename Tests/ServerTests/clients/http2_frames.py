"""HTTP/2 frames written one by one to a member's client port, for what a
gRPC library does only by chance. Usage: http2_frames.py HOST:PORT

A unary Put whose request ends exactly where the server's stream-window
refill would fall: the DATA frames carry 512 KiB (half the member's 1 MiB
stream window), the last of them with END_STREAM. A server must not
answer that last frame with a WINDOW_UPDATE for a stream whose sender is
done (its HTTP/2 layer refuses it); it answers the call. Prints the frames the
member sent back on the stream once the request was sent, window updates
aside (etcd 3.4 prints the same line).
"""
import socket
import struct
import sys

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def read_frame(sock):
    def exactly(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise EOFError("the member closed the connection")
            data += chunk
        return data
    head = exactly(9)
    length = int.from_bytes(head[:3], "big")
    return head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7FFFFFFF, exactly(length)


def literal(name, value):
    """An HPACK literal header field without indexing, new name, no Huffman."""
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def varint(n):
    out = b""
    while True:
        byte, n = n & 0x7F, n >> 7
        out += bytes([byte | (0x80 if n else 0)])
        if not n:
            return out


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=20)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0))
    windows = {0: 65535, 1: 65535}  # the connection's and stream 1's send windows

    def take(kind, flags, stream, payload):
        """Keep the windows; acknowledge settings and pings."""
        if kind == SETTINGS and not flags & ACK:
            for at in range(0, len(payload), 6):
                key, value = struct.unpack(">HI", payload[at:at + 6])
                if key == 4:  # SETTINGS_INITIAL_WINDOW_SIZE
                    windows[1] = value
            sock.sendall(frame(SETTINGS, ACK, 0))
        elif kind == WINDOW_UPDATE and stream in windows:
            windows[stream] += int.from_bytes(payload, "big") & 0x7FFFFFFF
        elif kind == PING and not flags & ACK:
            sock.sendall(frame(PING, ACK, 0, payload))

    # The member's settings first: they set stream 1's window.
    while True:
        kind, flags, stream, payload = read_frame(sock)
        take(kind, flags, stream, payload)
        if kind == SETTINGS and not flags & ACK:
            break

    total = 512 * 1024
    # PutRequest{key: "k" (3 bytes), value: V (1 + 3-byte length + V)} after gRPC's 5-byte prefix.
    value = total - 5 - 3 - 1 - 3
    request = b"\x0a\x01k" + b"\x12" + varint(value) + b"v" * value
    assert len(varint(value)) == 3 and len(request) + 5 == total
    body = b"\x00" + struct.pack(">I", len(request)) + request
    block = (b"\x83\x86"  # :method POST, :scheme http (static table)
             + literal(":path", "/etcdserverpb.KV/Put") + literal(":authority", host)
             + literal("content-type", "application/grpc") + literal("te", "trailers"))
    sock.sendall(frame(HEADERS, END_HEADERS, 1, block))
    sent, chunk = 0, 16384
    while sent < len(body):
        size = min(chunk, len(body) - sent)
        if windows[0] < size or windows[1] < size:
            take(*read_frame(sock))  # blocked: wait for window
            continue
        last = sent + size == len(body)
        sock.sendall(frame(DATA, END_STREAM if last else 0, 1, body[sent:sent + size]))
        windows[0] -= size
        windows[1] -= size
        sent += size

    seen = []
    while True:
        try:
            kind, flags, stream, payload = read_frame(sock)
        except (EOFError, OSError):
            seen.append("closed")
            break
        take(kind, flags, stream, payload)
        if kind == GOAWAY:
            seen.append("GOAWAY %d" % int.from_bytes(payload[4:8], "big"))
            break
        if stream != 1:
            continue
        if kind == HEADERS:
            seen.append("HEADERS" + (" END_STREAM" if flags & END_STREAM else ""))
            if flags & END_STREAM:
                break
        elif kind == DATA:
            seen.append("DATA")
        elif kind == RST_STREAM:
            seen.append("RST_STREAM %d" % int.from_bytes(payload, "big"))
            break
    print(" ".join(seen))


if __name__ == "__main__":
    main()
