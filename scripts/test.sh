#!/usr/bin/env bash
# The README's test command: installs what is missing, builds once, runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build --build-tests
swift test --skip-build --parallel
