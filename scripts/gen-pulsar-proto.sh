#!/usr/bin/env bash
# Regenerates src/backends/pulsar/client/proto/PulsarApi_pb.ts from the pinned PulsarApi.proto
# with buf (npm @bufbuild/buf ships its binary) and protoc-gen-es, both dev dependencies.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$root/node_modules/.bin:$PATH"
cd "$root/src/backends/pulsar/client/proto"
buf generate
echo "wrote $(pwd)/PulsarApi_pb.ts"
