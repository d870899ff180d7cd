import NIOConcurrencyHelpers
import Prometheus
import StateMachine
import Storage

/// etcd's MVCC counters, counted as etcd's `metricsTxnWrite` counts them:
/// every range (a compare reads a range too), put and delete-range
/// operation, and a transaction when it holds more than one of them; each
/// under etcd's name and its `etcd_debugging_` twin, as etcd 3.4 keeps
/// both. `etcd_debugging_mvcc_keys_total` is the number of live keys.
final class MVCCMetrics: ApplyMetrics, Sendable {
    private let ranges: [Counter]
    private let puts: [Counter]
    private let deletes: [Counter]
    private let txns: [Counter]
    private let keys: Gauge
    /// The live keys, owned by the apply thread (set at start and after a
    /// snapshot, moved by each write); read by scrapes.
    private let liveKeys = NIOLockedValueBox(0)

    init(registry: PrometheusCollectorRegistry) {
        func both(_ name: String, _ help: String) -> [Counter] {
            ["etcd", "etcd_debugging"].map { prefix in
                registry.makeCounter(descriptor: ServerMetrics.named("\(prefix)_mvcc_\(name)", help))
            }
        }
        ranges = both("range_total", "Total number of ranges seen by this member.")
        puts = both("put_total", "Total number of puts seen by this member.")
        deletes = both("delete_total", "Total number of deletes seen by this member.")
        txns = both("txn_total", "Total number of txns seen by this member.")
        keys = registry.makeGauge(descriptor: ServerMetrics.named("etcd_debugging_mvcc_keys_total", "Total number of keys."))
    }

    /// One store transaction's operations, as etcd counts them.
    func count(ranges: Int = 0, puts: Int = 0, deletes: Int = 0) {
        if ranges + puts + deletes > 1 { for counter in txns { counter.increment() } }
        if ranges > 0 { for counter in self.ranges { counter.increment(by: Int64(ranges)) } }
        if puts > 0 { for counter in self.puts { counter.increment(by: Int64(puts)) } }
        if deletes > 0 { for counter in self.deletes { counter.increment(by: Int64(deletes)) } }
    }

    /// A transaction's operations: compares and ranges read, puts, delete
    /// ranges (nested transactions' included); and its effect on live keys.
    func count(_ request: TxnRequest, _ response: TxnResponse) {
        var tally = (ranges: request.compare.count, puts: 0, deletes: 0, keys: 0)
        Self.tally(request, response, &tally)
        count(ranges: tally.ranges, puts: tally.puts, deletes: tally.deletes)
        moveKeys(by: tally.keys)
    }

    private static func tally(_ request: TxnRequest, _ response: TxnResponse,
                              _ tally: inout (ranges: Int, puts: Int, deletes: Int, keys: Int)) {
        let branch = response.succeeded ? request.success : request.failure
        for (operation, outcome) in zip(branch, response.responses) {
            switch outcome {
            case .range: tally.ranges += 1
            case .put(let previous):
                tally.puts += 1
                if previous == nil { tally.keys += 1 }
            case .deleted(let kvs):
                tally.deletes += 1
                tally.keys -= kvs.count
            case .txn(let nested):
                if case .txn(let inner) = operation {
                    tally.ranges += inner.compare.count
                    Self.tally(inner, nested, &tally)
                }
            }
        }
    }

    /// Live keys after a write that created `by` (negative: removed) keys.
    func moveKeys(by change: Int) {
        guard change != 0 else { return }
        keys.set(Double(liveKeys.withLockedValue { count in
            count += change
            return count
        }))
    }

    /// Live keys counted afresh (at start, after installing a snapshot).
    func setKeys(_ count: Int) {
        liveKeys.withLockedValue { $0 = count }
        keys.set(Double(count))
    }
}
