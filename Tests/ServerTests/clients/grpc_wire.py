"""gRPC on the client port, as grpcio (the C core under the PyPI etcd3
client) speaks it: messages larger than HTTP/2's first windows both ways,
the request size limit, unknown methods, compression Ballot does not
offer, many calls at once on one connection, a watch carrying megabytes,
and a watch the client cancels. Prints one line per check; the same
script against etcd 3.4 prints the same lines.

Usage: grpc_wire.py HOST:PORT
"""
import sys
import threading

import grpc
from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc

endpoint = sys.argv[1]
channel = grpc.insecure_channel(endpoint, options=[("grpc.max_receive_message_length", 64 << 20),
                                                  ("grpc.max_send_message_length", 64 << 20)])
kv = rpc_pb2_grpc.KVStub(channel)
watch = rpc_pb2_grpc.WatchStub(channel)


def code(call):
    try:
        call()
        return "OK"
    except grpc.RpcError as error:
        return f"{error.code().name} {error.details()}"


big = b"v" * 1_500_000
kv.Put(rpc_pb2.PutRequest(key=b"/wire/big", value=big), timeout=10)
got = kv.Range(rpc_pb2.RangeRequest(key=b"/wire/big"), timeout=10)
print("big value:", len(got.kvs[0].value), got.kvs[0].value == big)

too_large = code(lambda: kv.Put(rpc_pb2.PutRequest(key=b"/wire/huge", value=b"h" * 2_200_000), timeout=10))
print("too large:", too_large.split(" (")[0])

unknown = channel.unary_unary("/etcdserverpb.KV/Nope", request_serializer=lambda m: m.SerializeToString(),
                              response_deserializer=rpc_pb2.RangeResponse.FromString)
print("unknown method:", code(lambda: unknown(rpc_pb2.RangeRequest(key=b"a"), timeout=10)).split(" ")[0])

print("gzip:", code(lambda: kv.Range(rpc_pb2.RangeRequest(key=b"a"), timeout=10, compression=grpc.Compression.Gzip)).split(" ")[0])

futures = [kv.Put.future(rpc_pb2.PutRequest(key=b"/wire/many/%03d" % i, value=b"%d" % i), timeout=30) for i in range(300)]
revisions = {f.result().header.revision for f in futures}
count = kv.Range(rpc_pb2.RangeRequest(key=b"/wire/many/", range_end=b"/wire/many0", count_only=True), timeout=10).count
print("concurrent puts:", len(revisions), count)

start = kv.Range(rpc_pb2.RangeRequest(key=b"/wire/big"), timeout=10).header.revision + 1
requests_done = threading.Event()


def requests():
    yield rpc_pb2.WatchRequest(create_request=rpc_pb2.WatchCreateRequest(key=b"/wire/w", start_revision=start))
    requests_done.wait(30)


stream = watch.Watch(requests(), timeout=30)
for i in range(3):
    kv.Put(rpc_pb2.PutRequest(key=b"/wire/w", value=bytes([65 + i]) * 1_000_000), timeout=10)
sizes = []
for response in stream:
    sizes += [len(event.kv.value) for event in response.events]
    if len(sizes) == 3:
        break
stream.cancel()
requests_done.set()
print("watch sizes:", sizes)
print("after cancel:", kv.Range(rpc_pb2.RangeRequest(key=b"/wire/w", count_only=True), timeout=10).count)
