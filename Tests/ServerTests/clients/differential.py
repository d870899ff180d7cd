"""One scripted session, printed so that etcd's and Ballot's outputs compare.

Usage: differential.py HOST:PORT

Runs the same requests against one member (of a one-member cluster) over
gRPC (every etcd v3 service: KV, Watch, Lease, Cluster, Maintenance) and
the JSON gateway, and prints one line per answer: the response as JSON
with proto field names, or "ERR <code> <message>". What legitimately
differs between two servers is normalised: cluster and member IDs, raft
terms and indexes, database sizes and hashes, and lease IDs the server
chose. Revisions are printed relative to the store's revision when the
session starts, so a harness's own earlier writes do not shift them.
"""
import json
import re
import sys
import time
import urllib.error
import urllib.request

import grpc
from etcd3 import etcdrpc as rpc
from google.protobuf.json_format import MessageToDict

endpoint = sys.argv[1]
channel = grpc.insecure_channel(endpoint)
kv, watch, lease = rpc.KVStub(channel), rpc.WatchStub(channel), rpc.LeaseStub(channel)
cluster, maintenance = rpc.ClusterStub(channel), rpc.MaintenanceStub(channel)
base = kv.Range(rpc.RangeRequest(key=b"d/"), timeout=10).header.revision
REVISION_FIELDS = {"revision", "create_revision", "mod_revision", "compact_revision", "start_revision"}
DROPPED = {"cluster_id", "member_id", "raft_term", "raftIndex", "raftTerm", "raftAppliedIndex", "dbSize",
           "dbSizeInUse", "hash", "leader", "blob", "remaining_bytes", "peerURLs", "clientURLs"}
lease_names = {}


def normalise(value, key=None):
    if key == "members" and isinstance(value, list):
        # Both list members by ID; IDs differ between the servers, names do not.
        value = sorted(value, key=lambda m: m.get("name", "~"))
    if isinstance(value, dict):
        return {k: normalise(v, k) for k, v in value.items() if k not in DROPPED}
    if isinstance(value, list):
        return [normalise(v, key) for v in value]
    if key in REVISION_FIELDS and value not in (None, "0", 0):
        return f"R{int(value) - base:+d}"
    if key in ("ID", "lease", "IDs") and value not in (None, "0", 0) and int(value) >= 1 << 32:
        # IDs the server chose: named in order of appearance.
        return lease_names.setdefault(str(value), f"L{len(lease_names)}")
    return value


def show(label, message):
    print(f"{label}: {json.dumps(normalise(MessageToDict(message, preserving_proto_field_name=True)), sort_keys=True)}", flush=True)


def call(label, function, request, **options):
    try:
        show(label, function(request, timeout=10, **options))
    except grpc.RpcError as error:
        print(f"{label}: ERR {error.code().name} {error.details()}", flush=True)


def put(key, value=b"v", **fields):
    return rpc.PutRequest(key=key, value=value, **fields)


# KV: puts with their options, ranges every way, deletes, transactions, compaction.
for i in range(5):
    call(f"put {i}", kv.Put, put(f"d/k{i}".encode(), f"v{i}".encode()))
call("put prev_kv", kv.Put, put(b"d/k1", b"v1b", prev_kv=True))
call("put ignore_value", kv.Put, put(b"d/k1", b"", ignore_value=True, prev_kv=True))
call("put ignore_value missing", kv.Put, put(b"d/none", b"", ignore_value=True))
call("put empty key", kv.Put, put(b""))
call("put lease unknown", kv.Put, put(b"d/l", lease=424242))
call("range one", kv.Range, rpc.RangeRequest(key=b"d/k1"))
call("range prefix", kv.Range, rpc.RangeRequest(key=b"d/", range_end=b"d0"))
call("range limit", kv.Range, rpc.RangeRequest(key=b"d/", range_end=b"d0", limit=2))
call("range sort", kv.Range, rpc.RangeRequest(key=b"d/", range_end=b"d0", sort_order=2, sort_target=3, keys_only=True))
call("range count", kv.Range, rpc.RangeRequest(key=b"d/", range_end=b"d0", count_only=True))
call("range from key", kv.Range, rpc.RangeRequest(key=b"d/k3", range_end=b"\x00", keys_only=True))
call("range old revision", kv.Range, rpc.RangeRequest(key=b"d/k1", revision=base + 2))
call("range future revision", kv.Range, rpc.RangeRequest(key=b"d/k1", revision=base + 1000))
call("range filters", kv.Range, rpc.RangeRequest(key=b"d/", range_end=b"d0", min_mod_revision=base + 3, max_create_revision=base + 4, keys_only=True))
call("range serializable", kv.Range, rpc.RangeRequest(key=b"d/k0", serializable=True))
call("range empty key", kv.Range, rpc.RangeRequest(key=b""))
call("range negative limit", kv.Range, rpc.RangeRequest(key=b"d/", range_end=b"d0", limit=-1, count_only=True))
call("delete one", kv.DeleteRange, rpc.DeleteRangeRequest(key=b"d/k4", prev_kv=True))
call("delete none", kv.DeleteRange, rpc.DeleteRangeRequest(key=b"d/absent"))
op_put = lambda k, v: rpc.RequestOp(request_put=put(k, v))
op_range = lambda k: rpc.RequestOp(request_range=rpc.RangeRequest(key=k))
op_delete = lambda k: rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k, prev_kv=True))
call("txn success", kv.Txn, rpc.TxnRequest(
    compare=[rpc.Compare(key=b"d/k0", result=0, target=2, value=b"v0")],
    success=[op_range(b"d/k0"), op_put(b"d/t", b"1"), op_delete(b"d/k3")], failure=[op_range(b"d/k1")]))
call("txn failure", kv.Txn, rpc.TxnRequest(
    compare=[rpc.Compare(key=b"d/k0", result=1, target=0, version=5)], success=[op_put(b"d/t", b"2")], failure=[op_range(b"d/t")]))
call("txn nested", kv.Txn, rpc.TxnRequest(success=[rpc.RequestOp(request_txn=rpc.TxnRequest(
    compare=[rpc.Compare(key=b"d/t", result=2, target=1, create_revision=0)], success=[op_put(b"d/n", b"1")]))]))
call("txn compare range", kv.Txn, rpc.TxnRequest(
    compare=[rpc.Compare(key=b"d/", range_end=b"d0", result=3, target=3, mod_revision=base)], success=[op_range(b"d/n")]))
call("txn duplicate", kv.Txn, rpc.TxnRequest(success=[op_put(b"d/x", b"1"), op_put(b"d/x", b"2")]))
call("txn empty op", kv.Txn, rpc.TxnRequest(success=[rpc.RequestOp()]))
call("txn too many", kv.Txn, rpc.TxnRequest(success=[op_put(f"d/m{i}".encode(), b"1") for i in range(129)]))
call("compact", kv.Compact, rpc.CompactionRequest(revision=base + 3))
call("compact again", kv.Compact, rpc.CompactionRequest(revision=base + 2))
call("compact future", kv.Compact, rpc.CompactionRequest(revision=base + 1000))
call("range compacted", kv.Range, rpc.RangeRequest(key=b"d/k1", revision=base + 2))

# Watch: history from a revision with previous values, filters, cancel, progress.
def watch_session(label, requests, count):
    def produce():
        for request in requests:
            yield request
            time.sleep(0.2)
        time.sleep(1)
    stream = watch.Watch(produce(), timeout=5)
    try:
        for i, response in enumerate(stream):
            show(f"{label} {i}", response)
            if i + 1 >= count:
                break
    except grpc.RpcError as error:
        print(f"{label}: ERR {error.code().name} {error.details()}", flush=True)
    stream.cancel()


create = lambda **f: rpc.WatchRequest(create_request=rpc.WatchCreateRequest(**f))
watch_session("watch history", [create(key=b"d/", range_end=b"d0", start_revision=base + 4, prev_kv=True)], 2)
watch_session("watch filters", [create(key=b"d/", range_end=b"d0", start_revision=base + 4, filters=[0])], 2)
watch_session("watch compacted", [create(key=b"d/k1", start_revision=base + 1)], 2)
# (The etcd3 package's protos predate client-chosen watch IDs.)
watch_session("watch cancel", [create(key=b"d/k0"), rpc.WatchRequest(cancel_request=rpc.WatchCancelRequest(watch_id=0))], 2)

# Lease.
call("lease grant", lease.LeaseGrant, rpc.LeaseGrantRequest(ID=1000, TTL=60))
call("lease grant auto", lease.LeaseGrant, rpc.LeaseGrantRequest(TTL=30))
call("lease grant exists", lease.LeaseGrant, rpc.LeaseGrantRequest(ID=1000, TTL=60))
call("put leased", kv.Put, put(b"d/leased", lease=1000))
call("lease ttl", lease.LeaseTimeToLive, rpc.LeaseTimeToLiveRequest(ID=1000, keys=True))
call("lease ttl unknown", lease.LeaseTimeToLive, rpc.LeaseTimeToLiveRequest(ID=999))
call("lease leases", lease.LeaseLeases, rpc.LeaseLeasesRequest())
for response in lease.LeaseKeepAlive(iter([rpc.LeaseKeepAliveRequest(ID=1000), rpc.LeaseKeepAliveRequest(ID=999)]), timeout=5):
    show("lease keepalive", response)
call("lease revoke", lease.LeaseRevoke, rpc.LeaseRevokeRequest(ID=1000))
call("lease revoke again", lease.LeaseRevoke, rpc.LeaseRevokeRequest(ID=1000))
call("range leased", kv.Range, rpc.RangeRequest(key=b"d/leased"))

# Cluster: a learner that never starts, updated, promoted (refused), removed.
# The etcd3 package's protos predate learners: their fields go as raw bytes.
members = cluster.MemberList(rpc.MemberListRequest(), timeout=10)
print(f"member list: {[m.name for m in members.members]}", flush=True)
raw = lambda method, response: channel.unary_unary(f"/etcdserverpb.Cluster/{method}", request_serializer=lambda b: b,
                                                   response_deserializer=response)
try:
    learner = rpc.MemberAddRequest(peerURLs=["http://127.0.0.1:1"]).SerializeToString() + b"\x10\x01"
    added = raw("MemberAdd", rpc.MemberAddResponse.FromString)(learner, timeout=10)
    print(f"member add learner: urls={list(added.member.peerURLs)} members={len(added.members)}", flush=True)
    call("member update", cluster.MemberUpdate, rpc.MemberUpdateRequest(ID=added.member.ID, peerURLs=["http://127.0.0.1:2"]))
    promote = rpc.MemberRemoveRequest(ID=added.member.ID).SerializeToString()  # the same field 1
    try:
        raw("MemberPromote", lambda b: b)(promote, timeout=10)
        print("member promote: accepted", flush=True)
    except grpc.RpcError as error:
        print(f"member promote: ERR {error.code().name} {error.details()}", flush=True)
    call("member remove", cluster.MemberRemove, rpc.MemberRemoveRequest(ID=added.member.ID))
except grpc.RpcError as error:
    print(f"member add learner: ERR {error.code().name} {error.details()}", flush=True)
# etcd's raft drops a configuration change proposed while the last one is
# committed but not yet marked applied (it becomes an empty entry, and the
# caller waits out its deadline): the remove above answers before that mark.
# A put's answer comes after it, so the reference run does not flake on it.
call("put after membership", kv.Put, put(b"d/after-membership"))
call("member add twice", cluster.MemberAdd, rpc.MemberAddRequest(peerURLs=[members.members[0].peerURLs[0]]))
call("member remove unknown", cluster.MemberRemove, rpc.MemberRemoveRequest(ID=12345))

# Maintenance.
call("status", maintenance.Status, rpc.StatusRequest())
call("hash kv", maintenance.HashKV, rpc.HashKVRequest(revision=0))
call("alarm list", maintenance.Alarm, rpc.AlarmRequest(action=0))
call("defragment", maintenance.Defragment, rpc.DefragmentRequest())
first = next(iter(maintenance.Snapshot(rpc.SnapshotRequest(), timeout=30)))
print(f"snapshot: first chunk {len(first.blob) > 0}", flush=True)
call("move leader to nobody", maintenance.MoveLeader, rpc.MoveLeaderRequest(targetID=12345))

# The JSON gateway.
def gateway(label, path, body):
    request = urllib.request.Request(f"http://{endpoint}{path}", data=body.encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=3) as answer:
            status, text = answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        status, text = error.code, error.read().decode()
    except TimeoutError:
        status, text = "stream", ""
    lines = []
    for line in text.splitlines():
        try:
            lines.append(json.dumps(normalise(json.loads(line)), sort_keys=True))
        except ValueError:
            lines.append(line)
    print(f"gateway {label}: {status} {' | '.join(lines)}", flush=True)


gateway("put", "/v3/kv/put", '{"key":"ZC9n","value":"MQ==","prev_kv":true}')
gateway("range", "/v3/kv/range", '{"key":"ZC8=","range_end":"ZDA=","keys_only":true,"limit":"2"}')
gateway("txn", "/v3/kv/txn", '{"compare":[{"key":"ZC9n","target":"VALUE","value":"MQ=="}],"success":[{"request_delete_range":{"key":"ZC9n"}}]}')
gateway("empty key", "/v3/kv/put", '{"value":"MQ=="}')
gateway("bad json", "/v3/kv/range", '{"key":')
gateway("unknown field", "/v3/kv/range", '{"key":"ZC9rMA==","nonsense":1}')
gateway("lease grant", "/v3/lease/grant", '{"ID":2000,"TTL":20}')
gateway("lease ttl", "/v3/kv/lease/timetolive", '{"ID":2000}')
gateway("lease revoke", "/v3/lease/revoke", '{"ID":2000}')
gateway("lease revoke again", "/v3/lease/revoke", '{"ID":2000}')
gateway("member list", "/v3/cluster/member/list", '{}')
gateway("alarm", "/v3/maintenance/alarm", '{}')
gateway("beta", "/v3beta/kv/range", '{"key":"ZC9rMA=="}')
gateway("not found", "/v3/kv/nothing", '{}')
