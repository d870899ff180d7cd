#!/usr/bin/env bash
# Installs what this checkout needs and the machine lacks; safe to run again.
# The Swift toolchain must already be on PATH. Debian packages come from apt
# when missing: LMDB for the storage layer, etcdctl and etcd (the reference
# the differential and snapshot tests compare with) for the end-to-end tests
# and for trying `ballot dev`, iproute2 for the tests' network namespaces.
# The PyPI etcd3 client (for the tests) is
# installed with the pins in scripts/python-requirements.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
apt_packages=(liblmdb-dev etcd-client etcd-server curl openssl iproute2)
# pip only when this python3 has none of its own.
python3 -m pip --version >/dev/null 2>&1 || apt_packages+=(python3-pip)
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
    # Debian's etcd-server starts an etcd service on port 2379, where
    # `ballot dev` listens: the tests run their own etcd, so stop the one
    # this script just installed.
    if [[ " ${missing[*]} " == *" etcd-server "* ]] && command -v systemctl >/dev/null 2>&1 \
        && systemctl is-active --quiet etcd 2>/dev/null; then
        echo "install-deps: stopping and disabling the etcd service Debian started (the tests run their own)" >&2
        systemctl disable --now etcd >/dev/null 2>&1 || true
    fi
fi
if ! python3 -c 'import etcd3' >/dev/null 2>&1; then
    python3 -m pip install -q --disable-pip-version-check -r scripts/python-requirements.txt
fi
