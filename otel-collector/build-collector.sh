#!/usr/bin/env bash
# Build the bulwark collector distribution from builder-config.yaml with ocb.
# Output: <repo>/bin/otelcol-bulwark. Idempotent: skips the build when the binary is newer
# than the manifest (pass -f to force).
set -euo pipefail
OCB_VERSION="${OCB_VERSION:-v0.165.0}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="$root/bin/otelcol-bulwark"
if [[ "${1:-}" != "-f" && -x "$out" && "$out" -nt "$here/builder-config.yaml" ]]; then
  echo "build-collector: $out is up to date"; exit 0
fi
mkdir -p "$root/bin"
cd "$here"
mkdir -p build
start=$(date +%s)
# GOFLAGS is set explicitly so a caller's -mod=... cannot interfere with the generated module.
GOFLAGS=-buildvcs=false go run "go.opentelemetry.io/collector/cmd/builder@${OCB_VERSION}" --config builder-config.yaml
cp "$here/build/otelcol-bulwark/otelcol-bulwark" "$out"
echo "build-collector: built $out in $(( $(date +%s) - start ))s"
