#!/usr/bin/env bash
# govulncheck on ./... with an offline vulnerability database.
#
# vuln.go.dev is out of reach here, but the database ships as a Go module:
# golang.org/x/vulndb holds the OSV entries in data/osv/, and its cmd/indexdb
# turns them into the layout `govulncheck -db file://...` reads. The built
# database is cached under ${XDG_CACHE_HOME:-~/.cache}/opportunist/vulndb/,
# keyed by the vulndb version; bump VULNDB_VERSION to get newer entries
# (go list -m golang.org/x/vulndb@latest).
#
# The check runs under GOTOOLCHAIN=go1.27.3 (VULNCHECK_GO): govulncheck judges
# the standard library of the Go that builds the code, and the machine's
# go1.26.8 has known, fixed vulnerabilities. Release binaries are built with
# that Go too (make image). It fails when a vulnerability is reachable.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
VULNCHECK_GO=${VULNCHECK_GO:-go1.27.3}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/opportunist/vulndb/$VULNDB_VERSION

if [ ! -f "$cache/index/db.json" ]; then
  echo "vulncheck: building the vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION into $cache"
  # Module download directories are read-only; indexdb only reads them.
  src=$($GO mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  if [ -z "$src" ] || [ ! -d "$src/data/osv" ]; then
    echo "vulncheck: golang.org/x/vulndb@$VULNDB_VERSION has no data/osv directory (got '$src')" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$cache")"
  tmp=$(mktemp -d "$cache.tmp.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  $GO run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$tmp"
  rm -rf "$cache"
  mv "$tmp" "$cache"
  trap - EXIT
fi

echo "vulncheck: govulncheck ./... (standard library of $VULNCHECK_GO, database golang.org/x/vulndb@$VULNDB_VERSION)"
GOTOOLCHAIN=$VULNCHECK_GO $GO tool -modfile=hack/tools/go.mod govulncheck -db "file://$cache" "$@" ./...
