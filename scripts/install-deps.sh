#!/usr/bin/env bash
# Installs what this checkout needs and the machine lacks; safe to run again.
# Today that is only the Swift toolchain, which must already be on PATH: the
# Raft core and simulator use nothing outside SwiftPM packages. Later issues
# add Debian packages (liblmdb-dev, etcd-client) and PyPI clients here.
set -euo pipefail
apt_packages=()
if ! command -v swift >/dev/null 2>&1; then
    echo "error: no Swift toolchain on PATH; install Swift 6.x (https://www.swift.org/install/) and retry" >&2
    exit 1
fi
missing=()
for p in "${apt_packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi
