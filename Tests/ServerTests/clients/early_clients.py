"""Opens N gRPC connections to HOST:PORT and sends each a KV.Range request
in raw HTTP/2 (preface, SETTINGS, HEADERS, DATA) before the member serves
clients, holds them for SECONDS, then counts the connections that got an
answer. Usage: early_clients.py PORT N SECONDS. Prints "answered A of N".
"""
import socket, struct, sys, time

def frame(kind, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload

path = b"/etcdserverpb.KV/Range"
# HPACK without Huffman: :method POST, :scheme http (static table), then literals.
headers = (bytes([0x83, 0x86, 0x44, len(path)]) + path + bytes([0x41, 9]) + b"127.0.0.1"
           + bytes([0x5f, 16]) + b"application/grpc" + bytes([0x40, 2]) + b"te" + bytes([8]) + b"trailers")
message = b"\x00" + struct.pack(">I", 3) + b"\x0a\x01a"  # RangeRequest{key: "a"}
port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
sockets = []
for _ in range(count):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 4, 1, headers) + frame(0, 1, 1, message))
    sockets.append(s)
time.sleep(seconds)
answered = 0
for s in sockets:
    s.settimeout(5)
    try:
        if s.recv(65536):
            answered += 1
    except OSError:
        pass
print("answered", answered, "of", len(sockets))
