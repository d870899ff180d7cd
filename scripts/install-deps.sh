#!/usr/bin/env bash
# Installs what this checkout needs and the machine lacks. Safe to run again.
set -euo pipefail
if ! command -v swift >/dev/null 2>&1; then
    echo "error: Swift 6 toolchain not found on PATH; install Swift 6.x first" >&2
    exit 1
fi
