#!/usr/bin/env bash
# Installs what this checkout needs and the machine lacks; safe to run again.
# The Swift toolchain must already be on PATH; Debian packages are installed
# with apt-get when missing (LMDB for the storage layer). Later issues add
# etcd-client and the PyPI test clients here.
set -euo pipefail
apt_packages=(liblmdb-dev)
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
