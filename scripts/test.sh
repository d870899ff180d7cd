#!/usr/bin/env bash
# The README's test command: installs what is missing, builds once, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --build-tests
# Test clusters stop their members by PID when they end; a test process that
# crashes cannot, so whatever it left running goes here (their data directories
# are named ballot-e2e-*), and so do the network namespaces of ConsistencyTests
# (ballot-*).
cleanup() {
    pkill -TERM -f "ballot-e2e-" 2>/dev/null || true
    for ns in $(ip netns list 2>/dev/null | awk '/^ballot-/ {print $1}'); do ip netns del "$ns" 2>/dev/null || true; done
}
trap cleanup EXIT
swift test --skip-build --parallel
