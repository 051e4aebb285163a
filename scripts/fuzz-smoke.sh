#!/usr/bin/env bash
# fuzz-smoke.sh [SECONDS] [PACKAGES...]: runs every Fuzz* target of the
# given packages (default: the whole module) for SECONDS each (default 5),
# one at a time with -parallel 1 so it fits a shared 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-${FUZZTIME:-5}}
shift || true
pkgs=("$@")
[ ${#pkgs[@]} -gt 0 ] || mapfile -t pkgs < <(go list ./...)
start=$(date +%s)
n=0
for pkg in "${pkgs[@]}"; do
  # go test -list prints test names then "ok"; keep the Fuzz ones.
  targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for f in $targets; do
    echo "== $pkg $f (${secs}s)"
    go test -run '^$' -fuzz "^${f}\$" -fuzztime "${secs}s" -parallel 1 "$pkg"
    n=$((n + 1))
  done
done
echo "fuzz-smoke: $n targets, ${secs}s each, $(( $(date +%s) - start ))s total"
