"""Unary calls one after another on one HTTP/2 connection, each followed by
a PING, as grpc-go's BDP estimator (etcd's Go clients, etcdctl) and gRPC
core's (grpcio) send them: a ping with data that arrives after the last
ping's ack. Usage: ping_per_call.py HOST:PORT [CALLS]

Prints how many calls were answered and pings acknowledged, and the GOAWAY
if the member sent one. etcd 3.4 answers every call and ping and sends no
GOAWAY; a member that counted the pings as a flood closed the connection
after 200 (ENHANCE_YOUR_CALM, code 11), and the clients reconnected.
"""
import socket
import struct
import sys

from http2_frames import DATA, HEADERS, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, END_STREAM, END_HEADERS, ACK, \
    frame, literal, read_frame


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    calls = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
    sock = socket.create_connection((host, int(port)), timeout=20)
    sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0))
    request = b"\x0a\x01k"  # RangeRequest{key: "k"}
    body = b"\x00" + struct.pack(">I", len(request)) + request
    block = (b"\x83\x86"  # :method POST, :scheme http (static table)
             + literal(":path", "/etcdserverpb.KV/Range") + literal(":authority", host)
             + literal("content-type", "application/grpc") + literal("te", "trailers"))
    answered = acked = 0
    goaway = "none"
    stream = 1
    for call in range(calls):
        sock.sendall(frame(HEADERS, END_HEADERS, stream, block) + frame(DATA, END_STREAM, stream, body))
        done = pinged = False
        while not (done and pinged and acked == call + 1):
            try:
                kind, flags, on, payload = read_frame(sock)
            except (EOFError, OSError):
                goaway = goaway if goaway != "none" else "closed"
                break
            if kind == SETTINGS and not flags & ACK:
                sock.sendall(frame(SETTINGS, ACK, 0))
            elif kind == PING and not flags & ACK:
                sock.sendall(frame(PING, ACK, 0, payload))
            elif kind == PING:
                acked += 1
            elif kind == GOAWAY:
                goaway = "code %d" % int.from_bytes(payload[4:8], "big")
                break
            elif on == stream and kind == DATA and not pinged:
                # The response's data: the BDP ping goes out with it.
                sock.sendall(frame(PING, 0, 0, struct.pack(">Q", call)))
                pinged = True
            elif on == stream and kind == HEADERS and flags & END_STREAM:
                answered += 1
                done = True
        else:
            stream += 2
            continue
        break
    print("calls answered: %d, pings acknowledged: %d, goaway: %s" % (answered, acked, goaway))


if __name__ == "__main__":
    main()
