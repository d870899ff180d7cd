"""Drives a Ballot cluster with the PyPI etcd3 client, unmodified.

Usage: etcd3_kv.py HOST:PORT [HOST:PORT ...]
Prints one line per check ("name: value"); the Swift test asserts them.
"""
import sys

import etcd3

endpoints = sys.argv[1:]
clients = [etcd3.client(host=e.split(":")[0], port=int(e.split(":")[1]), timeout=10) for e in endpoints]
c = clients[0]

c.put("/py/a", "1")
c.put("/py/b", "2")
value, meta = c.get("/py/a")
print("get:", value.decode(), meta.key.decode(), meta.version)
print("prefix:", ",".join(f"{m.key.decode()}={v.decode()}" for v, m in c.get_prefix("/py/")))
for i, other in enumerate(clients):
    v, _ = other.get("/py/b")
    print(f"member{i}:", v.decode())

ok, responses = c.transaction(
    compare=[c.transactions.value("/py/a") == "1"],
    success=[c.transactions.put("/py/a", "10"), c.transactions.get("/py/b")],
    failure=[c.transactions.put("/py/a", "failed")],
)
print("txn:", ok, responses[1][0][0].decode())
ok, _ = c.transaction(
    compare=[c.transactions.version("/py/a") == 1],
    success=[c.transactions.put("/py/a", "wrong")],
    failure=[c.transactions.delete("/py/b")],
)
print("txn2:", ok, c.get("/py/a")[0].decode(), c.get("/py/b")[0])
print("delete:", c.delete("/py/a"), c.delete("/py/missing"))
print("status:", c.get("/py/a")[0])
