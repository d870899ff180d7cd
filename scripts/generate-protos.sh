#!/usr/bin/env bash
# Generates Sources/EtcdAPI from etcd 3.4's own .proto files (Debian's
# golang-etcd-server-dev) and Ballot's ballot.proto, with protoc (Debian's
# protobuf-compiler) and the swift-protobuf / grpc-swift-2 generators built
# from this package's dependencies. Run by hand when a .proto changes; the
# output is committed, so builds and CI never run protoc.
set -euo pipefail
cd "$(dirname "$0")/.."
etcd=/usr/share/gocode/src/go.etcd.io/etcd
for need in protoc:protobuf-compiler "$etcd/etcdserver/etcdserverpb/rpc.proto":golang-etcd-server-dev; do
    path=${need%%:*}; package=${need##*:}
    if ! command -v "$path" >/dev/null 2>&1 && [ ! -e "$path" ]; then
        echo "error: $path is missing; apt-get install $package" >&2; exit 1
    fi
done
out=Sources/EtcdAPI
protos=$out/protos
# etcd's files import gogoproto and Google's HTTP annotations, which only the
# Go generator and the gateway read: copy the files without them.
rm -rf "$protos/etcdserverpb" "$protos/mvccpb" "$protos/authpb" "$protos/v3lockpb" "$protos/v3electionpb"
mkdir -p "$protos/etcdserverpb" "$protos/mvccpb" "$protos/authpb" "$protos/v3lockpb" "$protos/v3electionpb"
strip() {
    python3 - "$1" "$2" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
text = re.sub(r'import "gogoproto/gogo.proto";\n', '', text)
text = re.sub(r'import "google/api/annotations.proto";\n', '', text)
text = re.sub(r'option \(gogoproto\.[a-z_]+\) = [a-z]+;\n', '', text)
text = re.sub(r'\s*\[\(gogoproto\.[a-z_]+\) = [a-z]+\]', '', text)
text = re.sub(r"\s*option \(google\.api\.http\) = \{(?:[^{}]|\{[^{}]*\})*\};", "", text)
text = text.replace('import "etcd/mvcc/mvccpb/kv.proto";', 'import "mvccpb/kv.proto";')
text = text.replace('import "etcd/auth/authpb/auth.proto";', 'import "authpb/auth.proto";')
text = text.replace('import "etcd/etcdserver/etcdserverpb/rpc.proto";', 'import "etcdserverpb/rpc.proto";')
text = text.replace('{\n  }', '{}')
assert 'gogoproto' not in text and 'google.api' not in text, sys.argv[1]
open(sys.argv[2], 'w').write("// Copied from etcd 3.4 (Debian golang-etcd-server-dev) by scripts/generate-protos.sh,\n// without gogoproto and HTTP gateway options. Do not edit.\n" + text)
PY
}
strip "$etcd/etcdserver/etcdserverpb/rpc.proto" "$protos/etcdserverpb/rpc.proto"
strip "$etcd/mvcc/mvccpb/kv.proto" "$protos/mvccpb/kv.proto"
strip "$etcd/auth/authpb/auth.proto" "$protos/authpb/auth.proto"
strip "$etcd/etcdserver/api/v3lock/v3lockpb/v3lock.proto" "$protos/v3lockpb/v3lock.proto"
strip "$etcd/etcdserver/api/v3election/v3electionpb/v3election.proto" "$protos/v3electionpb/v3election.proto"
swift build --product protoc-gen-swift
swift build --product protoc-gen-grpc-swift-2
bin=$(swift build --show-bin-path)
rm -f "$out"/*.pb.swift "$out"/*.grpc.swift
protoc -I "$protos" \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
    --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" \
    --swift_out="$out" --swift_opt=Visibility=Public,FileNaming=PathToUnderscores \
    --grpc-swift-2_out="$out" --grpc-swift-2_opt=Visibility=Public,FileNaming=PathToUnderscores,Client=true,Server=true \
    etcdserverpb/rpc.proto mvccpb/kv.proto authpb/auth.proto ballot/ballot.proto \
    v3lockpb/v3lock.proto v3electionpb/v3election.proto
ls -l "$out"/*.swift
