#!/usr/bin/env bash
# The README's first command: install what is missing, build, and run Ballot's
# main job: `ballot dev`, a 3-member cluster on 127.0.0.1 (clients on 2379,
# 22379, 32379; peers on 2380, 22380, 32380). Ctrl-C stops it. Extra
# arguments go to `ballot dev` (e.g. --base-port 12379 --data-dir /tmp/b).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release --product ballot
exec .build/release/ballot dev "$@"
