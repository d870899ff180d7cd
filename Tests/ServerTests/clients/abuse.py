"""Everything a hostile or careless client can send, against a running cluster.

Usage:
  abuse.py attack ACKS_FILE MAX_REQUEST_BYTES CLIENT_EPS PEER_EPS
  abuse.py verify ACKS_FILE CLIENT_EPS

CLIENT_EPS and PEER_EPS are comma-separated host:port lists. `attack` runs a
writer throughout and, beside it, each abuse in turn; every write the
cluster acknowledged goes to ACKS_FILE (hex key, hex value; the last write
of a key wins). A request the cluster refuses must be refused with an
error a client can act on: never UNKNOWN, INTERNAL or DATA_LOSS, and no
member may stop serving. `verify` checks that every acknowledged write
reads back from every member (serializable reads: each member's own
store) and that the members' HashKV agree at one revision.
Prints "phase NAME ..." lines as it goes; exits 1 on the first failure.
"""
import json
import os
import random
import resource
import socket
import sys
import threading
import time

import grpc
from etcd3 import etcdrpc as rpc

MB = 1 << 20
BAD_CODES = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.DATA_LOSS}
OPTIONS = [("grpc.max_send_message_length", 64 * MB), ("grpc.max_receive_message_length", 64 * MB)]


def fail(message):
    print(f"FAIL {message}", flush=True)
    sys.exit(1)


class Member:
    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.channel = grpc.insecure_channel(endpoint, options=OPTIONS)
        self.kv = rpc.KVStub(self.channel)
        self.watch = rpc.WatchStub(self.channel)
        self.maintenance = rpc.MaintenanceStub(self.channel)


class Acks:
    """Acknowledged writes: key -> value (None: acknowledged delete)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latest = {}

    def put(self, key, value):
        with self.lock:
            self.latest[key] = value

    def save(self, path):
        with self.lock:
            rows = [[k.hex(), None if v is None else v.hex()] for k, v in self.latest.items()]
        with open(path, "w") as f:
            json.dump(rows, f)


def refused(call, what):
    """A request that must fail with an error a client can act on."""
    try:
        call()
    except grpc.RpcError as error:
        if error.code() in BAD_CODES:
            fail(f"{what}: {error.code()} {error.details()}")
        return error.code()
    fail(f"{what}: accepted")


def answered_or_refused(call, what):
    """A request etcd may answer or refuse; either way not with a server fault."""
    try:
        return call()
    except grpc.RpcError as error:
        if error.code() in BAD_CODES:
            fail(f"{what}: {error.code()} {error.details()}")
        return error.code()


def writer(members, acks, stop, counts):
    """Writes load/<seq> in a loop, moving on to the next member on errors."""
    which, seq = 0, 0
    while not stop.is_set():
        key, value = f"load/{seq:07d}".encode(), os.urandom(16)
        seq += 1
        try:
            members[which].kv.Put(rpc.PutRequest(key=key, value=value), timeout=5)
            acks.put(key, value)
            counts["acked"] += 1
        except grpc.RpcError:
            which = (which + 1) % len(members)
            time.sleep(0.05)


def key_sizes(members, acks, limit):
    # Binary keys, zeros and 0xff included, from 1 byte to near the request limit.
    sizes = [1, 2, 255, 256, 300, 511, 512, 513, 600, 1000, 4096, 65536, MB, limit - 4096]
    keys = []
    for size in sizes:
        body = bytes(random.randrange(256) for _ in range(min(size, 64))) * (size // 64 + 1)
        key = b"\x00big/" + body[: size - 5] if size > 5 else bytes([0] * size)
        keys.append(key)
        value = size.to_bytes(4, "big")
        members[size % len(members)].kv.Put(rpc.PutRequest(key=key, value=value), timeout=30)
        acks.put(key, value)
        for m in members:
            got = m.kv.Range(rpc.RangeRequest(key=key), timeout=30)
            if len(got.kvs) != 1 or got.kvs[0].key != key or got.kvs[0].value != value:
                # a follower may apply a moment later
                time.sleep(0.5)
                got = m.kv.Range(rpc.RangeRequest(key=key, serializable=True), timeout=30)
                if len(got.kvs) != 1 or got.kvs[0].key != key:
                    fail(f"key of {size} bytes does not read back from {m.endpoint}")
    # Ranged in byte order, whatever their length.
    listed = members[0].kv.Range(rpc.RangeRequest(key=b"\x00", range_end=b"\x01", keys_only=True), timeout=30)
    order = [kv.key for kv in listed.kvs]
    if order != sorted(keys) or len(order) != len(set(keys)):
        fail(f"long keys out of order: {[len(k) for k in order]}")
    # A zero-byte key, and keys that differ only after 511 bytes.
    for tail in [b"a", b"b"]:
        key = b"\x00twin/" + b"x" * 600 + tail
        members[0].kv.Put(rpc.PutRequest(key=key, value=tail), timeout=10)
        acks.put(key, tail)
    twins = members[1].kv.Range(rpc.RangeRequest(key=b"\x00twin/", range_end=b"\x00twin0"), timeout=10)
    if [kv.value for kv in twins.kvs] != [b"a", b"b"]:
        fail("keys that differ after 600 bytes were merged")
    print(f"phase keys ok: {len(sizes)} sizes up to {sizes[-1]} bytes", flush=True)


def oversized(members, limit):
    m = members[0]
    refused(lambda: m.kv.Put(rpc.PutRequest(key=b"huge", value=b"v" * (limit + 1)), timeout=30), "value over the limit")
    refused(lambda: m.kv.Put(rpc.PutRequest(key=b"k" * (limit + 1), value=b""), timeout=30), "key over the limit")
    refused(lambda: m.kv.Put(rpc.PutRequest(key=b"", value=b"v"), timeout=10), "empty key")
    many = rpc.TxnRequest(success=[rpc.RequestOp(request_put=rpc.PutRequest(key=f"t{i}".encode(), value=b"v")) for i in range(129)])
    refused(lambda: m.kv.Txn(many, timeout=10), "129 operations")
    twice = rpc.TxnRequest(success=[rpc.RequestOp(request_put=rpc.PutRequest(key=b"dup", value=b"v"))] * 2)
    refused(lambda: m.kv.Txn(twice, timeout=10), "a key put twice in one txn")
    refused(lambda: m.kv.Txn(rpc.TxnRequest(success=[rpc.RequestOp()]), timeout=10), "an empty operation")
    refused(lambda: m.kv.Put(rpc.PutRequest(key=b"leased", value=b"v", lease=0x7EADBEEF), timeout=10), "an unknown lease")
    # Nested 40 deep: etcd accepts it (no depth limit before proposing).
    txn = rpc.TxnRequest(success=[rpc.RequestOp(request_put=rpc.PutRequest(key=b"nest/deep", value=b"v"))])
    for depth in range(40):
        txn = rpc.TxnRequest(success=[rpc.RequestOp(request_txn=txn)])
    answered_or_refused(lambda: m.kv.Txn(txn, timeout=10), "a txn nested 40 deep")
    # Limits and revisions at the edges.
    for request in [
        rpc.RangeRequest(key=b"\x00", range_end=b"\x00", limit=-1),
        rpc.RangeRequest(key=b"\x00", range_end=b"\x00", limit=(1 << 63) - 1, keys_only=True),
        rpc.RangeRequest(key=b"a", revision=-5),
        rpc.RangeRequest(key=b"a", revision=(1 << 63) - 1),
        rpc.RangeRequest(key=b"a", range_end=b"\x00", max_create_revision=-1, min_mod_revision=(1 << 62)),
        rpc.RangeRequest(key=b"\xff" * 10, range_end=b"\x00", sort_order=2, sort_target=4),
    ]:
        answered_or_refused(lambda: m.kv.Range(request, timeout=30), f"range {request}")
    answered_or_refused(lambda: m.kv.Compact(rpc.CompactionRequest(revision=(1 << 62)), timeout=10), "compact to the future")
    answered_or_refused(lambda: m.kv.Compact(rpc.CompactionRequest(revision=-3), timeout=10), "compact to a negative revision")
    answered_or_refused(lambda: m.kv.DeleteRange(rpc.DeleteRangeRequest(key=b"zz", range_end=b"a"), timeout=10), "an inverted delete range")
    print("phase oversized ok", flush=True)


def many_watches(members, count):
    """Thousands of watches on one stream, then the stream goes away."""
    created = 0

    def requests():
        for i in range(count):
            yield rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=f"w/{i}".encode()))
        time.sleep(2)

    for response in members[1].watch.Watch(requests(), timeout=60):
        if response.created:
            created += 1
        if created == count:
            break
    if created != count:
        fail(f"{created} of {count} watches created")
    print(f"phase watches ok: {count} on one stream", flush=True)


def non_reader(members, seconds):
    """A watch stream over everything that never reads what it is sent."""
    stop = threading.Event()

    def requests():
        yield rpc.WatchRequest(create_request=rpc.WatchCreateRequest(key=b"\x00", range_end=b"\x00", start_revision=1))
        stop.wait(seconds + 30)

    stream = members[2].watch.Watch(requests())
    # Never iterate `stream`: its responses pile up wherever the server keeps them.
    return stream, stop


def garbage(clients, peers):
    targets = [(e, kind) for e in clients for kind in ["client"]] + [(e, kind) for e in peers for kind in ["peer"]]
    payloads = [
        os.urandom(4096),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + os.urandom(4096),
        b"\x16\x03\x01\x02\x00" + os.urandom(512),
        b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\n\r\n",
        b"POST /v3/kv/put HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n{",
        b"\xff\xff\xff\xff" + os.urandom(64),
        b"\x00\x00\x00\x10" + os.urandom(16),
    ]
    sent = 0
    for endpoint, kind in targets:
        host, port = endpoint.rsplit(":", 1)
        for payload in payloads:
            try:
                s = socket.create_connection((host, int(port)), timeout=5)
                s.sendall(payload)
                s.settimeout(2)
                try:
                    s.recv(1024)
                except OSError:
                    pass
                s.close()
                sent += 1
            except OSError:
                pass
    print(f"phase garbage ok: {sent} connections", flush=True)


def idle_connections(clients, peers, count, members, acks):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sockets = []
    for i in range(count):
        endpoint = (clients + peers)[i % len(clients + peers)]
        host, port = endpoint.rsplit(":", 1)
        try:
            sockets.append(socket.create_connection((host, int(port)), timeout=5))
        except OSError as error:
            fail(f"connection {i} to {endpoint}: {error}")
    # With every connection open, a new client is still served.
    fresh = Member(clients[0])
    fresh.kv.Put(rpc.PutRequest(key=b"idle/check", value=b"1"), timeout=10)
    acks.put(b"idle/check", b"1")
    for s in sockets:
        s.close()
    print(f"phase idle ok: {count} connections", flush=True)


def attack(acks_file, limit, clients, peers):
    members = [Member(e) for e in clients]
    acks, stop, counts = Acks(), threading.Event(), {"acked": 0}
    thread = threading.Thread(target=writer, args=(members, acks, stop, counts))
    thread.start()
    try:
        stream, release = non_reader(members, 60)
        key_sizes(members, acks, limit)
        oversized(members, limit)
        many_watches(members, 5000)
        garbage(clients, peers)
        idle_connections(clients, peers, 2000, members, acks)
        # Events the non-reading watch is sent: 1,500 values of 128 kB
        # (190 MB), more than a member may hold for one stalled client.
        for i in range(1500):
            key, value = f"flood/{i % 20}".encode(), os.urandom(128 * 1024)
            members[i % len(members)].kv.Put(rpc.PutRequest(key=key, value=value), timeout=10)
            acks.put(key, value)
        print("phase flood ok", flush=True)
        release.set()
        stream.cancel()
    finally:
        stop.set()
        thread.join()
        acks.save(acks_file)
    if counts["acked"] == 0:
        fail("the writer got no write through")
    print(f"attack done: writer acked {counts['acked']}, {len(acks.latest)} keys recorded", flush=True)


def verify(acks_file, clients):
    with open(acks_file) as f:
        rows = json.load(f)
    members = [Member(e) for e in clients]
    # Wait until every member applied the same revision.
    deadline = time.time() + 30
    while True:
        revisions = [m.kv.Range(rpc.RangeRequest(key=b"\x00", serializable=True, count_only=True), timeout=10).header.revision for m in members]
        if len(set(revisions)) == 1:
            break
        if time.time() > deadline:
            fail(f"members stay at different revisions: {revisions}")
        time.sleep(0.2)
    for m in members:
        for key_hex, value_hex in rows:
            key = bytes.fromhex(key_hex)
            got = m.kv.Range(rpc.RangeRequest(key=key, serializable=True), timeout=30)
            if value_hex is None:
                if got.kvs:
                    fail(f"{m.endpoint}: deleted key {key[:40]!r} is back")
            elif len(got.kvs) != 1 or got.kvs[0].value != bytes.fromhex(value_hex):
                fail(f"{m.endpoint}: acknowledged write of {key[:40]!r} ({len(key)} bytes) is lost")
    hashes = [m.maintenance.HashKV(rpc.HashKVRequest(revision=revisions[0]), timeout=30).hash for m in members]
    if len(set(hashes)) != 1:
        fail(f"HashKV differs at revision {revisions[0]}: {hashes}")
    print(f"verify ok: {len(rows)} keys on {len(members)} members, revision {revisions[0]}, hash {hashes[0]}", flush=True)


if __name__ == "__main__":
    random.seed(7)
    if sys.argv[1] == "attack":
        attack(sys.argv[2], int(sys.argv[3]), sys.argv[4].split(","), sys.argv[5].split(","))
    else:
        verify(sys.argv[2], sys.argv[3].split(","))
