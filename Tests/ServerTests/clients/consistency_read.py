"""One Range over gRPC at a consistency level Ballot's metadata chooses
(README, "Consistency levels"), as a grpcio client sends it.

Usage: consistency_read.py HOST:PORT KEY LEVEL [MAX_MS] [MAX_REVISIONS]
LEVEL: etcd-serializable (etcd's flag, no metadata), linearizable, lease,
serializable or bounded. Prints "value V", "missing", or "error CODE DETAILS".
"""
import sys

import grpc
from etcd3.etcdrpc import rpc_pb2, rpc_pb2_grpc

endpoint, key, level = sys.argv[1], sys.argv[2], sys.argv[3]
metadata = []
request = rpc_pb2.RangeRequest(key=key.encode())
if level == "etcd-serializable":
    request.serializable = True
else:
    metadata.append(("ballot-consistency", level))
if len(sys.argv) > 4 and sys.argv[4]:
    metadata.append(("ballot-max-staleness-ms", sys.argv[4]))
if len(sys.argv) > 5 and sys.argv[5]:
    metadata.append(("ballot-max-staleness-revisions", sys.argv[5]))

with grpc.insecure_channel(endpoint) as channel:
    try:
        got = rpc_pb2_grpc.KVStub(channel).Range(request, metadata=metadata, timeout=5)
        print(f"value {got.kvs[0].value.decode()}" if got.kvs else "missing")
    except grpc.RpcError as error:
        print(f"error {error.code().name} {error.details()}")
