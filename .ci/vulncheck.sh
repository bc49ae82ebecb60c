#!/usr/bin/env bash
# govulncheck over the whole module. When the vulnerability database's own
# server cannot be reached (on these machines only the Go module proxy can),
# the same database is built locally from the golang.org/x/vulndb module
# (its data/osv files, indexed with its cmd/indexdb) and used with -db.
#
#   VULNCHECK_VERSION  govulncheck version (default v1.9.0)
#   VULNDB_VERSION     golang.org/x/vulndb version for the local copy
#                      (default latest: the newest reports)
#   VULNCHECK_STDLIB   fail (default) or warn: with warn, findings that are
#                      all in the Go standard library (fixed by a newer Go
#                      toolchain, not by this module) print a warning and
#                      exit 0; any finding in a module still fails.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
VULN=${VULNCHECK_VERSION:-v1.9.0}
VULNDB=${VULNDB_VERSION:-latest}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

GOBIN=$work $GO install "golang.org/x/vuln/cmd/govulncheck@$VULN"
echo "vulncheck: $($GO env GOVERSION), govulncheck $VULN"
rc=0
"$work/govulncheck" ./... >"$work/out" 2>&1 || rc=$?
if [ "$rc" -ne 0 ] && grep -q "fetching vulnerabilities" "$work/out"; then
  echo "vulncheck: the online database is unreachable; building it from golang.org/x/vulndb@$VULNDB"
  dir=$(cd "$work" && $GO mod download -json "golang.org/x/vulndb@$VULNDB" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
  ver=$(cd "$work" && $GO mod download -json "golang.org/x/vulndb@$VULNDB" | sed -n 's/^[[:space:]]*"Version": "\(.*\)",*$/\1/p')
  GOBIN=$work $GO install "golang.org/x/vulndb/cmd/indexdb@$ver"
  "$work/indexdb" -vulns "$dir/data/osv" -out "$work/db"
  echo "vulncheck: database golang.org/x/vulndb@$ver ($(ls "$dir/data/osv" | wc -l) reports)"
  rc=0
  "$work/govulncheck" -db "file://$work/db" ./... >"$work/out" 2>&1 || rc=$?
fi
cat "$work/out"
if [ "$rc" -eq 3 ] && [ "${VULNCHECK_STDLIB:-fail}" = warn ] &&
  grep -Eq '^Your code is affected by [0-9]+ vulnerabilit(y|ies) from the Go standard library\.$' "$work/out"; then
  fixed=$(grep -Eo 'Fixed in: [a-z0-9/]+@go[0-9.]+' "$work/out" | sed 's/.*@//' | sort -V | tail -1)
  echo "vulncheck: WARNING: every finding is in the standard library of $($GO env GOVERSION); no module is affected."
  echo "vulncheck: WARNING: build with ${fixed:-a newer Go} or later to fix them (VULNCHECK_STDLIB=fail makes this an error)."
  rc=0
fi
exit "$rc"
