#!/usr/bin/env bash
# Side by side: a 3-member etcd 3.4 (Debian's etcd-server) and a 3-member
# Ballot on 127.0.0.1, the same load from the same client (ballot-bench etcd)
# in one run, one after the other. Prints every result line and a table of
# ratios Ballot/etcd (throughput: above 1 is Ballot faster; p99 latency:
# below 1 is Ballot faster). Settings by environment:
#   SECONDS_EACH=10 CLIENTS=64 CONNECTIONS=8 VALUE_BYTES=256 KEYS=10000 WATCHERS=64
#   WORKLOADS="put range range-serializable watch"
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${SECONDS_EACH:-10}
CLIENTS=${CLIENTS:-64}
CONNECTIONS=${CONNECTIONS:-8}
VALUE_BYTES=${VALUE_BYTES:-256}
KEYS=${KEYS:-10000}
WATCHERS=${WATCHERS:-64}
WORKLOADS=${WORKLOADS:-"put range range-serializable watch"}

command -v etcd >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server; }
bash scripts/install-deps.sh
swift build -c release --product ballot
swift build -c release --product ballot-bench
bench=.build/release/ballot-bench
work=$(mktemp -d /tmp/ballot-vs-etcd.XXXXXX)
results=$work/results.txt
pids=()
stop_cluster() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    pids=()
}
trap stop_cluster EXIT

start_cluster() {  # kind base-port
    local kind=$1 base=$2 cluster="" i
    for i in 1 2 3; do cluster+="${cluster:+,}m$i=http://127.0.0.1:$((base + 10 * i + 1))"; done
    for i in 1 2 3; do
        local client=$((base + 10 * i)) peer=$((base + 10 * i + 1))
        local common=(--name "m$i" --data-dir "$work/$kind-m$i" --listen-client-urls "http://127.0.0.1:$client"
            --advertise-client-urls "http://127.0.0.1:$client" --listen-peer-urls "http://127.0.0.1:$peer"
            --initial-advertise-peer-urls "http://127.0.0.1:$peer" --initial-cluster "$cluster"
            --initial-cluster-token "bench-$kind" --initial-cluster-state new)
        if [ "$kind" = etcd ]; then
            etcd "${common[@]}" --logger=zap --log-level=error >"$work/$kind-m$i.log" 2>&1 &
        else
            .build/release/ballot "${common[@]}" --listen-metrics-urls "http://127.0.0.1:$((client + 2))" --log-level warning >"$work/$kind-m$i.log" 2>&1 &
        fi
        pids+=($!)
    done
    endpoints="127.0.0.1:$((base + 10)),127.0.0.1:$((base + 20)),127.0.0.1:$((base + 30))"
    for _ in $(seq 100); do
        ETCDCTL_API=3 etcdctl --endpoints="$endpoints" --dial-timeout=1s put bench-ready 1 >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "error: the $kind cluster did not come up; logs in $work" >&2
    exit 1
}

for kind in etcd ballot; do
    base=$([ "$kind" = etcd ] && echo 41000 || echo 42000)
    for workload in $WORKLOADS; do
        start_cluster "$kind" "$base"   # a fresh cluster per workload: no carried-over state
        clients=$CLIENTS
        [ "$workload" = watch ] && clients=$WATCHERS
        $bench etcd --label "$kind" --workload "$workload" --endpoints "$endpoints" --clients "$clients" \
            --connections "$CONNECTIONS" --value-bytes "$VALUE_BYTES" --keys "$KEYS" --seconds "$SECONDS_EACH" | tee -a "$results"
        stop_cluster
        rm -rf "$work"/"$kind"-m*
    done
done

echo
echo "Ballot/etcd, $CLIENTS clients ($WATCHERS watchers), $VALUE_BYTES-byte values, ${SECONDS_EACH}s each, $(nproc) cores:"
python3 - "$results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    if not line.startswith("RESULT "):
        continue
    fields = dict(item.split("=", 1) for item in line.split()[1:])
    rows[(fields["label"], fields["workload"])] = fields
print("| workload | etcd ops/s | Ballot ops/s | ratio | etcd p99 ms | Ballot p99 ms | p99 ratio |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for workload in ["put", "range", "range-serializable", "watch"]:
    e, b = rows.get(("etcd", workload)), rows.get(("ballot", workload))
    if not e or not b:
        continue
    ratio = int(b["ops_per_s"]) / max(1, int(e["ops_per_s"]))
    p99 = float(b["p99_ms"]) / max(0.001, float(e["p99_ms"]))
    print(f"| {workload} | {int(e['ops_per_s']):,} | {int(b['ops_per_s']):,} | {ratio:.2f}x | {e['p99_ms']} | {b['p99_ms']} | {p99:.2f}x |")
PY
