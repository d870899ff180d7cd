#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run Ballot's
# main job. Until the server lands (issue #5: `ballot dev`, a local 3-member
# cluster), the main job is the deterministic simulator driving the real Raft
# core: a sweep of seeds with every fault kind on, printed as it goes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release --product ballot-sim
exec .build/release/ballot-sim --engine raft --seeds 1..200 --steps 5000 --verbose "$@"
