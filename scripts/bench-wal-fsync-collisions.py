#!/usr/bin/env python3
# WAL-like syncs beside store-like page writers, on the disk /tmp is on: three processes
# each pwrite 370 bytes + fdatasync every 0.8 ms (a member's write-ahead log under one
# client) while three others write random 4 KiB pages every 0.8 ms and fdatasync them every
# INTERVAL seconds (the store's checkpoints; 0: never; -1: no page writers at all).
# Prints INTERVAL and, per log process, the mean and p50 sync in ms.
#   python3 scripts/bench-wal-fsync-collisions.py 0.01
import os, sys, time, multiprocessing as mp, random
def wal(path, n, q):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    chunk = b"\0" * (1 << 20)
    for off in range(0, 64 << 20, len(chunk)): os.pwrite(fd, chunk, off)
    os.fsync(fd)
    rec = b"x" * 370; lat = []; off = 0
    for i in range(n):
        t = time.perf_counter(); os.pwrite(fd, rec, off); os.fdatasync(fd); lat.append(time.perf_counter() - t)
        off += len(rec); time.sleep(0.0008)
    os.close(fd); os.unlink(path); lat.sort()
    q.put((sum(lat)/len(lat)*1000, lat[len(lat)//2]*1000))
def store(path, interval, stop):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"\0" * (64 << 20), 0); os.fsync(fd)
    page = b"y" * 4096; last = time.time()
    while not stop.is_set():
        for _ in range(2): os.pwrite(fd, page, random.randrange(0, 16384) * 4096)
        time.sleep(0.0008)
        if interval and time.time() - last >= interval:
            os.fdatasync(fd); last = time.time()
    os.close(fd); os.unlink(path)
if __name__ == "__main__":
    interval = float(sys.argv[1])
    q = mp.Queue(); stop = mp.Event()
    ss = [mp.Process(target=store, args=(f"/tmp/fst2-s-{i}", interval, stop)) for i in range(3)] if interval >= 0 else []
    for s in ss: s.start()
    time.sleep(0.5)
    ps = [mp.Process(target=wal, args=(f"/tmp/fst2-w-{i}", 2000, q)) for i in range(3)]
    for p in ps: p.start()
    for p in ps: p.join()
    stop.set()
    for s in ss: s.join()
    print(interval, [tuple(round(x, 3) for x in q.get()) for _ in ps])
