"""Write load from several etcd3 clients; prints every acknowledged write.

Usage: etcd3_load.py SECONDS CLIENTS HOST:PORT [HOST:PORT ...]
Each client thread puts load/<client>/<seq> in a loop. A write counts as
acknowledged only when put() returned; on an error the client moves to the
next endpoint and writes its next key (an unacknowledged key may or may not
exist afterwards). Output: "ack KEY VALUE UNIXTIME" lines, then "done N".
"""
import sys
import threading
import time

import etcd3

seconds = float(sys.argv[1])
clients = int(sys.argv[2])
endpoints = sys.argv[3:]
lock = threading.Lock()
acked = 0
deadline = time.time() + seconds


def writer(number):
    global acked
    conns = [etcd3.client(host=e.split(":")[0], port=int(e.split(":")[1]), timeout=3) for e in endpoints]
    which = number % len(conns)
    seq = 0
    while time.time() < deadline:
        key = f"load/{number}/{seq:06d}"
        value = f"v{number}-{seq}"
        seq += 1
        try:
            conns[which].put(key, value)
        except Exception:
            which = (which + 1) % len(conns)
            time.sleep(0.05)
            continue
        with lock:
            acked += 1
            print(f"ack {key} {value} {time.time():.3f}", flush=True)


threads = [threading.Thread(target=writer, args=(n,)) for n in range(clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"done {acked}", flush=True)
