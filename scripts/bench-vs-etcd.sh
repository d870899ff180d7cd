#!/usr/bin/env bash
# Side by side: a 3-member etcd 3.4 (Debian's etcd-server) and a 3-member
# Ballot on 127.0.0.1, the same load from the same client in one run,
# alternating etcd, Ballot, etcd, Ballot: each workload on a fresh cluster.
# The load is etcd's own `benchmark` tool (../shared/etcd-benchmark, built
# once), with the six workloads of etcd's performance guide that the speed
# issue measures; the watch fan-out, which that tool cannot measure, comes
# from `ballot-bench etcd`. Prints every result line and, per round, a table
# of ratios Ballot/etcd (throughput: above 1 is Ballot faster; p50 latency:
# below 1 is Ballot faster). Settings by environment:
#   ROUNDS=2 TOTAL_ONE=2000 TOTAL_MANY=20000 (requests per single-client / 100-client run)
#   WORKLOADS="put-1 put-100 range-l-100 range-s-100 range-l-1 txn-put-100 watch"
#   WATCH_SECONDS=10 WATCHERS=64
#   lock (not in the default set): LOCKERS=8 clients contend for one lock for
#   LOCK_SECONDS=10 (ballot-bench etcd --workload lock)
#   lock-etcdctl (not in the default set): the same with etcdctl processes
#   (LOCKERS loops of `etcdctl lock`, then 20 timed hand-overs)
#   levels (not in the default set): 100 clients read one key at each
#   consistency level for LEVEL_SECONDS=5 (Ballot's members with --lease-reads)
#   SCALE_KEYS=1000000 for the `scale` workload (not in the default set):
#   that many keys, then memory, database size and restart time
#   SNAPSHOT_KEYS=300000 for the `snapshot` workload (not in the default set):
#   a stopped member catches up by a snapshot of a database of that many keys;
#   database MB over its catch-up time, beside the disk's write rate (dd)
#   SWIFT_BUILD_FLAGS="" (extra release-build flags, for build experiments)
#   AUTH=1: auth enabled on both clusters, the load run as a user whose role
#   may read and write every key (etcd's permission check on every request)
#   PERF_WORKLOAD=put-100 (also record the members with `perf record -g` during
#   that workload; reports land in the work directory, printed at the end)
# Each etcd-benchmark line also gives CPU time per request: all three members
# together, the busiest member (the leader, for writes), and the client; and
# the members' voluntary context switches per request (thread hand-offs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
TOTAL_ONE=${TOTAL_ONE:-2000}
TOTAL_MANY=${TOTAL_MANY:-20000}
WATCH_SECONDS=${WATCH_SECONDS:-10}
WATCHERS=${WATCHERS:-64}
LOCKERS=${LOCKERS:-8}
LOCK_SECONDS=${LOCK_SECONDS:-10}
LEVEL_SECONDS=${LEVEL_SECONDS:-5}
SCALE_KEYS=${SCALE_KEYS:-1000000}
SNAPSHOT_KEYS=${SNAPSHOT_KEYS:-300000}
WORKLOADS=${WORKLOADS:-"put-1 put-100 range-l-100 range-s-100 range-l-1 txn-put-100 watch"}
shared=${SHARED:-../shared}
benchmark=${BENCHMARK:-/tmp/etcd-benchmark-bin/etcd-benchmark}
[ -x "$benchmark" ] || OUT="$(dirname "$benchmark")" bash "$shared/etcd-benchmark/build.sh"

command -v etcd >/dev/null 2>&1 || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q etcd-server; }
bash scripts/install-deps.sh
# SWIFT_BUILD_FLAGS: extra flags for the release build (a build experiment,
# e.g. "--scratch-path .build-cmo -Xswiftc -cross-module-optimization").
read -r -a build_flags <<<"${SWIFT_BUILD_FLAGS:-}"
swift build -c release "${build_flags[@]}" --product ballot
swift build -c release "${build_flags[@]}" --product ballot-bench
bin=$(swift build -c release "${build_flags[@]}" --show-bin-path)
bench=$bin/ballot-bench
work=$(mktemp -d /tmp/ballot-vs-etcd.XXXXXX)
results=$work/results.txt
pids=()
ballot_extra=()
stop_cluster() {
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    done
    pids=()
}
trap stop_cluster EXIT

# Start member i (1-3) of a kind's cluster; its PID goes to pids[i-1].
start_member() {  # kind base-port i
    local kind=$1 base=$2 i=$3 cluster="" j
    for j in 1 2 3; do cluster+="${cluster:+,}m$j=http://127.0.0.1:$((base + 10 * j + 1))"; done
    local client=$((base + 10 * i)) peer=$((base + 10 * i + 1))
    local common=(--name "m$i" --data-dir "$work/$kind-m$i" --listen-client-urls "http://127.0.0.1:$client"
        --advertise-client-urls "http://127.0.0.1:$client" --listen-peer-urls "http://127.0.0.1:$peer"
        --initial-advertise-peer-urls "http://127.0.0.1:$peer" --initial-cluster "$cluster"
        --initial-cluster-token "bench-$kind" --initial-cluster-state new)
    if [ "$kind" = etcd ]; then
        etcd "${common[@]}" --logger=zap --log-level=error >>"$work/$kind-m$i.log" 2>&1 &
    else
        "$bin/ballot" "${common[@]}" --listen-metrics-urls "http://127.0.0.1:$((client + 2))" --log-level warning "${ballot_extra[@]}" >>"$work/$kind-m$i.log" 2>&1 &
    fi
    pids[i - 1]=$!
}

start_cluster() {  # kind base-port
    local kind=$1 base=$2 i
    for i in 1 2 3; do start_member "$kind" "$base" "$i"; done
    endpoints="127.0.0.1:$((base + 10)),127.0.0.1:$((base + 20)),127.0.0.1:$((base + 30))"
    for _ in $(seq 100); do
        ETCDCTL_API=3 etcdctl --endpoints="$endpoints" --dial-timeout=1s put bench-ready 1 >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "error: the $kind cluster did not come up; logs in $work" >&2
    exit 1
}

# A process's user + system CPU time so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
ticks_per_second=$(getconf CLK_TCK)
# Context switches so far over a process's live threads (voluntary ones are
# the thread hand-offs: a wait for another thread's wake-up).
# (A thread may end between the glob and the read: never fail the run for it.)
switches() { { cat /proc/"$1"/task/*/status 2>/dev/null || true; } | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s + 0}'; }
perf_reports=()
# Write COUNT distinct keys (16-byte keys, 256-byte values) from 100
# clients through ENDPOINTS; prints the rate, in puts per second.
load_keys() {  # endpoints count
    local out=$work/load.txt
    $benchmark --endpoints "$1" --clients 100 --conns 10 put --key-size 16 --val-size 256 \
        --key-space-size "$2" --sequential-keys --total "$2" >"$out" 2>&1 || { cat "$out" >&2; return 1; }
    awk '/Requests\/sec:/ {print $2}' "$out"
}
# Seconds since a `date +%s.%N` reading, to the hundredth.
seconds_since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }

# Each workload's etcd benchmark arguments (etcd's op-guide/performance.md shapes).
args_for() {
    local put=(--key-size 8 --key-space-size 100000 --val-size 256)
    case $1 in
        put-1) echo --target-leader --clients 1 --conns 1 put "${put[@]}" --sequential-keys --total "$TOTAL_ONE" ;;
        put-100) echo --target-leader --clients 100 --conns 10 put "${put[@]}" --sequential-keys --total "$TOTAL_MANY" ;;
        range-l-100) echo --clients 100 --conns 10 range KEY --consistency l --total "$TOTAL_MANY" ;;
        range-s-100) echo --clients 100 --conns 10 range KEY --consistency s --total "$TOTAL_MANY" ;;
        range-l-1) echo --clients 1 --conns 1 range KEY --consistency l --total "$TOTAL_ONE" ;;
        txn-put-100) echo --target-leader --clients 100 --conns 10 txn-put --txn-ops 1 "${put[@]}" --total "$TOTAL_MANY" ;;
        *) echo "unknown workload $1" >&2; exit 2 ;;
    esac
}

for round in $(seq "$ROUNDS"); do
    for workload in $WORKLOADS; do
        for kind in etcd ballot; do
            # Below Linux's ephemeral ports (32768-60999): a client's outgoing
            # connection can hold a port in that range and make a member's
            # bind fail (seen on 2026-11-30 with 42000).
            base=$([ "$kind" = etcd ] && echo 21000 || echo 22000)
            ballot_extra=(); [ "$workload" = levels ] && ballot_extra=(--lease-reads)
            start_cluster "$kind" "$base"   # a fresh cluster per workload: no carried-over state
            ETCDCTL_API=3 etcdctl --endpoints="$endpoints" put KEY "$(head -c 256 /dev/zero | tr '\0' v)" >/dev/null
            user_args=()
            if [ "${AUTH:-0}" = 1 ]; then
                ctl() { ETCDCTL_API=3 etcdctl --endpoints="$endpoints" "$@" >/dev/null; }
                echo root | ctl user add root --interactive=false
                ctl user grant-role root root
                ctl role add bench
                ctl role grant-permission bench readwrite --from-key ""
                echo bench | ctl user add bench --interactive=false
                ctl user grant-role bench bench
                ctl auth enable
                user_args=(--user bench:bench)
            fi
            if [ "$workload" = scale ]; then
                # SCALE_KEYS distinct keys (256-byte values), then each
                # member's resident memory, the database size, and the time
                # from starting the stopped cluster again until every member
                # answers a serializable read.
                rate=$(load_keys "$endpoints" "$SCALE_KEYS")
                rss_kb=0; rss_max_kb=0
                for pid in "${pids[@]}"; do
                    kb=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
                    rss_kb=$((rss_kb + kb)); [ "$kb" -gt "$rss_max_kb" ] && rss_max_kb=$kb
                done
                db=$(ETCDCTL_API=3 etcdctl --endpoints="$(echo "$endpoints" | cut -d, -f1)" endpoint status -w json \
                    | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Status"]["dbSize"])')
                stop_cluster
                started=$(date +%s.%N)
                start_cluster "$kind" "$base"
                for ep in ${endpoints//,/ }; do
                    until ETCDCTL_API=3 etcdctl --endpoints="$ep" --dial-timeout=1s get KEY --consistency=s >/dev/null 2>&1; do sleep 0.05; done
                done
                restart=$(seconds_since "$started")
                echo "RESULT round=$round label=$kind workload=scale keys=$SCALE_KEYS load_ops_per_s=$rate rss_mb_members=$((rss_kb / 1024)) rss_mb_max=$((rss_max_kb / 1024)) db_bytes=$db restart_s=$restart" | tee -a "$results"
            elif [ "$workload" = snapshot ]; then
                # Member 3 stops; SNAPSHOT_KEYS keys are written (the others
                # compact their logs past where it stopped, at the default
                # --snapshot-count); member 3 starts again and can only catch
                # up by a snapshot of the whole database. Timed from its start
                # until it serves the leader's revision; the snapshot's size is
                # the leader's database size.
                kill -TERM "${pids[2]}"; wait "${pids[2]}" 2>/dev/null || true
                two=$(echo "$endpoints" | cut -d, -f1,2)
                load_keys "$two" "$SNAPSHOT_KEYS" >/dev/null
                read -r revision db < <(ETCDCTL_API=3 etcdctl --endpoints="$two" endpoint status -w json \
                    | python3 -c 'import json,sys; s=[e["Status"] for e in json.load(sys.stdin)]; print(max(x["header"]["revision"] for x in s), max(x["dbSize"] for x in s))')
                started=$(date +%s.%N)
                start_member "$kind" "$base" 3
                third=$(echo "$endpoints" | cut -d, -f3)
                until [ "$(ETCDCTL_API=3 etcdctl --endpoints="$third" --dial-timeout=1s get KEY --consistency=s -w json 2>/dev/null \
                    | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])' 2>/dev/null || echo 0)" -ge "$revision" ]; do
                    sleep 0.05
                done
                took=$(seconds_since "$started")
                disk=$(dd if=/dev/zero of="$work/dd.bin" bs=1M count=256 conv=fdatasync 2>&1 | awk '/copied/ {printf "%.0f", 268435456 / $(NF-3) / 1e6}'); rm -f "$work/dd.bin"
                echo "RESULT round=$round label=$kind workload=snapshot keys=$SNAPSHOT_KEYS db_bytes=$db catch_up_s=$took mb_per_s=$(awk -v b="$db" -v t="$took" 'BEGIN { printf "%.1f", b / t / 1e6 }') disk_mb_per_s=$disk" | tee -a "$results"
            elif [ "$workload" = lock ]; then
                # LOCKERS clients contend for one lock (etcd's Lock service),
                # each locking and unlocking at once: acquisitions per second,
                # and the hand-over from one holder's unlock to the next grant.
                $bench etcd --label "$kind" --workload lock --endpoints "$endpoints" --clients "$LOCKERS" \
                    --connections "$LOCKERS" --seconds "$LOCK_SECONDS" \
                    | sed "s/^RESULT /RESULT round=$round /" | tee -a "$results"
            elif [ "$workload" = lock-etcdctl ]; then
                # The same with etcdctl, as users run it: LOCKERS loops of
                # `etcdctl lock NAME -- true` for LOCK_SECONDS (acquisitions
                # per second, each paying a process start), then 20 hand-overs:
                # a holder whose command sleeps 0.3 s, a waiter started 0.1 s
                # into it; from the end of the holder's command (after which
                # etcdctl unlocks) to the start of the waiter's.
                ctl=(env ETCDCTL_API=3 etcdctl --endpoints="$endpoints")
                end=$(( $(date +%s) + LOCK_SECONDS ))
                lockers=()
                for l in $(seq "$LOCKERS"); do
                    ( n=0; while [ "$(date +%s)" -lt "$end" ]; do "${ctl[@]}" lock bench-lock -- true >/dev/null 2>&1 && n=$((n + 1)); done; echo "$n" >"$work/lockers-$l" ) &
                    lockers+=($!)
                done
                wait "${lockers[@]}"   # not the members, which are children too
                total=$(cat "$work"/lockers-* | awk '{s += $1} END {print s}'); rm -f "$work"/lockers-*
                : >"$work/handovers"
                for _ in $(seq 20); do
                    "${ctl[@]}" lock bench-handover -- sh -c "sleep 0.3; date +%s.%N >'$work/released'" >/dev/null 2>&1 &
                    holder=$!
                    sleep 0.1
                    "${ctl[@]}" lock bench-handover -- sh -c "date +%s.%N >'$work/granted'" >/dev/null 2>&1
                    wait "$holder"
                    awk -v r="$(cat "$work/released")" -v g="$(cat "$work/granted")" 'BEGIN { printf "%.2f\n", (g - r) * 1000 }' >>"$work/handovers"
                done
                read -r p50 p99 < <(sort -n "$work/handovers" | awk '{v[NR] = $1} END {print v[int(NR * 0.5 + 0.5)], v[NR]}')
                echo "RESULT round=$round label=$kind workload=lock-etcdctl lockers=$LOCKERS ops_per_s=$(awk -v t="$total" -v s="$LOCK_SECONDS" 'BEGIN { printf "%.1f", t / s }') p50_ms=$p50 handover_p50_ms=$p50 handover_max_ms=$p99" | tee -a "$results"
            elif [ "$workload" = levels ]; then
                # Reads of one key from 100 clients at each consistency level
                # (etcd has two: Ballot's metadata is not etcd's).
                levels="linearizable serializable"; [ "$kind" = ballot ] && levels="$levels lease bounded"
                for level in $levels; do
                    $bench etcd --label "$kind" --workload range --consistency "$level" --endpoints "$endpoints" --clients 100 \
                        --connections 10 --keys 1 --seconds "$LEVEL_SECONDS" \
                        | sed "s/^RESULT /RESULT round=$round /; s/workload=range/workload=range-$level/" | tee -a "$results"
                done
            elif [ "$workload" = watch ]; then
                $bench etcd --label "$kind" --workload watch --endpoints "$endpoints" --clients "$WATCHERS" \
                    --connections 8 --value-bytes 256 --keys 10000 --seconds "$WATCH_SECONDS" \
                    | sed "s/^RESULT /RESULT round=$round /" | tee -a "$results"
            else
                out=$work/out.txt
                # Whether the first endpoint leads: a single client talks to
                # it alone, so a linearizable read is either served by the
                # leader or forwarded by a follower, which costs a round trip
                # more (the leader is wherever the election put it, for both).
                first_leads=$(ETCDCTL_API=3 etcdctl --endpoints="${endpoints%%,*}" endpoint status -w json 2>/dev/null \
                    | python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["Status"]; print(int(s["header"]["member_id"] == s["leader"]))' 2>/dev/null || echo "?")
                before=()
                switched=()
                for pid in "${pids[@]}"; do before+=("$(cpu_ticks "$pid")"); switched+=("$(switches "$pid")"); done
                perf_pid=""
                if [ "${PERF_WORKLOAD:-}" = "$workload" ]; then
                    perf record -F 499 -g -o "$work/perf-$kind-$workload-$round.data" -p "$(IFS=,; echo "${pids[*]}")" >/dev/null 2>&1 &
                    perf_pid=$!
                fi
                # shellcheck disable=SC2046
                /usr/bin/time -f "%U %S" -o "$work/client-cpu.txt" \
                    $benchmark --precise "${user_args[@]}" --endpoints "$endpoints" $(args_for "$workload") >"$out" 2>&1 || { cat "$out"; exit 1; }
                if [ -n "$perf_pid" ]; then
                    kill -INT "$perf_pid"; wait "$perf_pid" || true
                    report=$work/perf-$kind-$workload-$round.txt
                    for sort in dso dso,sym; do
                        perf report -i "$work/perf-$kind-$workload-$round.data" --no-children -g none --sort "$sort" --percent-limit 0.7 --stdio 2>/dev/null \
                            | grep -v '^#' | grep -v '^$' | { if command -v swift >/dev/null; then swift demangle --simplified; else cat; fi; } >>"$report" || true
                    done
                    perf_reports+=("$report")
                fi
                member_ticks=0; busiest=0; member_switches=0
                for i in "${!pids[@]}"; do
                    member_switches=$((member_switches + $(switches "${pids[$i]}") - ${switched[$i]}))
                    delta=$(( $(cpu_ticks "${pids[$i]}") - ${before[$i]} ))
                    member_ticks=$((member_ticks + delta)); [ "$delta" -gt "$busiest" ] && busiest=$delta
                done
                rate=$(awk '/Requests\/sec:/ {print $2}' "$out")
                p50=$(awk '/ 50% in / {print $3}' "$out")
                p99=$(awk '/ 99% in / {print $3}' "$out")
                requests=$(awk '/Total:/ {print $2}' "$out" | head -1 | awk -v r="$rate" '{printf "%d", $1 * r + 0.5}')
                cpu=$(awk -v m="$member_ticks" -v b="$busiest" -v hz="$ticks_per_second" -v n="$requests" '{
                    printf "cpu_members_us=%.0f cpu_busiest_us=%.0f cpu_client_us=%.0f", m / hz * 1e6 / n, b / hz * 1e6 / n, ($1 + $2) * 1e6 / n }' "$work/client-cpu.txt")
                cpu+=$(awk -v s="$member_switches" -v n="$requests" 'BEGIN { printf " switches_members=%.1f", s / n }')
                cpu+=" first_endpoint_leads=$first_leads"
                echo "RESULT round=$round label=$kind workload=$workload ops_per_s=$rate p50_s=$p50 p99_s=$p99 requests=$requests $cpu auth=${AUTH:-0}" | tee -a "$results"
            fi
            stop_cluster
            rm -rf "$work"/"$kind"-m*
        done
    done
done

echo
echo "Ballot/etcd, etcd's benchmark tool ($TOTAL_ONE / $TOTAL_MANY requests), ballot-bench for watch ($WATCHERS watchers, ${WATCH_SECONDS}s), $(nproc) cores:"
python3 - "$results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    if not line.startswith("RESULT "):
        continue
    fields = dict(item.split("=", 1) for item in line.split()[1:])
    rows[(fields["round"], fields["label"], fields["workload"])] = fields
def rate(f): return float(f["ops_per_s"])
def p50_ms(f): return float(f["p50_s"]) * 1000 if "p50_s" in f else float(f.get("p50_ms", "nan"))
for rnd in sorted({k[0] for k in rows}, key=int):
    print(f"\nround {rnd}\n")
    print("| workload | etcd ops/s | Ballot ops/s | ratio | etcd p50 ms | Ballot p50 ms | p50 ratio |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for workload in ["put-1", "put-100", "range-l-100", "range-s-100", "range-l-1", "txn-put-100", "watch", "lock", "lock-etcdctl",
                     "range-linearizable", "range-serializable", "range-lease", "range-bounded"]:
        e, b = rows.get((rnd, "etcd", workload)), rows.get((rnd, "ballot", workload))
        if b and not e and workload in ("range-lease", "range-bounded"):
            # Ballot's own levels, beside etcd's linearizable read.
            e = rows.get((rnd, "etcd", "range-linearizable"))
        if not e or not b:
            continue
        ratio = rate(b) / max(1.0, rate(e))
        pe, pb = p50_ms(e), p50_ms(b)
        print(f"| {workload} | {rate(e):,.0f} | {rate(b):,.0f} | {ratio:.2f}x | {pe:.2f} | {pb:.2f} | {pb / max(0.001, pe):.2f}x |")
    print("\nCPU per request, microseconds: the three members together / the busiest member / the client;")
    print("the members' voluntary context switches (thread hand-offs) per request; whether the first")
    print("endpoint (the one a single client talks to) led, etcd / Ballot\n")
    print("| workload | etcd | Ballot | ratio (members) | etcd switches | Ballot switches | first endpoint leads |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for workload in ["put-1", "put-100", "range-l-100", "range-s-100", "range-l-1", "txn-put-100"]:
        e, b = rows.get((rnd, "etcd", workload)), rows.get((rnd, "ballot", workload))
        if not e or not b or "cpu_members_us" not in e:
            continue
        cell = lambda f: f"{f['cpu_members_us']} / {f['cpu_busiest_us']} / {f['cpu_client_us']}"
        print(f"| {workload} | {cell(e)} | {cell(b)} | {float(b['cpu_members_us']) / max(1.0, float(e['cpu_members_us'])):.2f}x"
              f" | {e.get('switches_members', '?')} | {b.get('switches_members', '?')}"
              f" | {e.get('first_endpoint_leads', '?')} / {b.get('first_endpoint_leads', '?')} |")
PY
python3 - "$results" <<'PY'
import sys
rows = {}
for line in open(sys.argv[1]):
    if line.startswith("RESULT ") and "workload=scale" in line:
        fields = dict(item.split("=", 1) for item in line.split()[1:])
        rows[(fields["round"], fields["label"])] = fields
if rows:
    print("\nscale: keys loaded (100 clients), resident memory of the three members (MB, and the largest),")
    print("database size, time from a restart of the stopped cluster until every member serves\n")
    print("| round | server | keys | load ops/s | RSS MB (members / largest) | MB per million keys (largest) | db MB | restart s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for (rnd, label), f in sorted(rows.items()):
        keys = int(f["keys"])
        print(f"| {rnd} | {label} | {keys:,} | {float(f['load_ops_per_s']):,.0f} | {f['rss_mb_members']} / {f['rss_mb_max']}"
              f" | {int(f['rss_mb_max']) * 1_000_000 / keys:,.0f} | {int(f['db_bytes']) / 1e6:,.0f} | {float(f['restart_s']):.1f} |")
PY
for report in "${perf_reports[@]}"; do echo; echo "perf: $report"; head -40 "$report"; done
python3 - "$results" <<'PY'
import sys
rows = [dict(item.split("=", 1) for item in line.split()[1:]) for line in open(sys.argv[1])
        if line.startswith("RESULT ") and "workload=snapshot" in line]
if rows:
    print("\nsnapshot: a stopped member catches up by a snapshot; database MB over the time from its start")
    print("until it serves the leader's revision, beside the disk's write rate (dd, 256 MiB, fdatasync)\n")
    print("| round | server | keys | db MB | catch-up s | MB/s | disk MB/s |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for f in rows:
        print(f"| {f['round']} | {f['label']} | {int(f['keys']):,} | {int(f['db_bytes']) / 1e6:,.0f} | {f['catch_up_s']} | {f['mb_per_s']} | {f['disk_mb_per_s']} |")
PY
