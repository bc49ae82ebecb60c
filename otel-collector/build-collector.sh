#!/usr/bin/env bash
# Build the bulwark collector distribution from builder-config.yaml with ocb.
# Output: <repo>/bin/otelcol-bulwark. Idempotent: skips the build when the binary is newer
# than the manifest (pass -f to force).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# ocb is released with the core modules: its version is the manifest's otlpreceiver version.
core_version="$(sed -n 's|^ *- gomod: go.opentelemetry.io/collector/receiver/otlpreceiver \(v[0-9.]*\).*|\1|p' "$here/builder-config.yaml")"
[[ -n "$core_version" ]] || { echo "build-collector: no otlpreceiver version in builder-config.yaml" >&2; exit 1; }
OCB_VERSION="${OCB_VERSION:-$core_version}"
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
