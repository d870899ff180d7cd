"""Watch, lease and member list through the PyPI etcd3 client.

Usage: etcd3_watch_lease.py HOST:PORT [HOST:PORT ...]
"""
import sys
import threading
import time

import etcd3

endpoints = sys.argv[1:]
clients = [etcd3.client(host=e.split(":")[0], port=int(e.split(":")[1]), timeout=10) for e in endpoints]
c = clients[0]

events, cancel = clients[-1].watch_prefix("/w/")
seen = []


def collect():
    for event in events:
        seen.append(f"{type(event).__name__}:{event.key.decode()}={event.value.decode()}")
        if len(seen) == 3:
            cancel()


t = threading.Thread(target=collect)
t.start()
time.sleep(0.5)
c.put("/w/a", "1")
c.put("/x", "ignored")
c.put("/w/b", "2")
c.delete("/w/a")
t.join(10)
print("watch:", ",".join(seen))

lease = c.lease(60)
c.put("/l/k", "v", lease=lease)
print("lease ttl:", lease.granted_ttl, 0 < lease.remaining_ttl <= 60, [k.decode() for k in lease.keys])
print("refresh:", [r.TTL for r in lease.refresh()])
lease.revoke()
print("after revoke:", c.get("/l/k")[0])

members = sorted(m.name for m in c.members)
print("members:", ",".join(members))
