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
# Minimizing each new interesting input may take 60 s by default, which
# spends a short run's whole budget shrinking one large image instead of
# fuzzing (FuzzPrepare sat at 0 execs/s for 50 s doing it); a fifth of the
# budget is plenty here. A crasher is still minimized and written.
mins="$(( secs / 5 > 1 ? secs / 5 : 1 ))s"
start=$(date +%s)
n=0
races=0

# fuzz_one PKG TARGET runs one target. Go 1.26's fuzzing coordinator can
# fail a run that reached -fuzztime with "context deadline exceeded" and no
# failing input: its own deadline escapes the filter meant to swallow it
# (https://go.dev/issue/75804, fixed in Go 1.27 by suppressing exactly that
# error). A retry is no cure (CI once lost the same target twice in a row),
# so this does what Go 1.27 does: a run whose only failure is that line,
# that wrote no reproducer under testdata/fuzz and printed no "Failing
# input", counts as a pass and is reported as such. Anything else fails.
inputs() { if [ -d "$1" ]; then ls "$1" | wc -l; else echo 0; fi; }
deadline_race() { # OUTPUT TARGET
  [ "$(grep -c '^--- FAIL' <<<"$1")" -eq 1 ] &&
    grep -q "^--- FAIL: $2 " <<<"$1" &&
    [ "$(grep -A1 "^--- FAIL: $2 " <<<"$1" | tail -1)" = '    context deadline exceeded' ] &&
    ! grep -q 'Failing input\|panic:\|fuzzing process hung\|terminated unexpectedly' <<<"$1"
}
fuzz_one() {
  local pkg=$1 f=$2 dir out rc before
  dir="$(go list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$f"
  before=$(inputs "$dir")
  set +e
  out=$(go test -run '^$' -fuzz "^${f}\$" -fuzztime "${secs}s" -fuzzminimizetime "$mins" -parallel 1 "$pkg" 2>&1)
  rc=$?
  set -e
  echo "$out"
  [ $rc -eq 0 ] && return 0
  if [ "$(inputs "$dir")" -eq "$before" ] && deadline_race "$out" "$f"; then
    echo "fuzz-smoke: $f: ran its ${secs}s; Go 1.26's coordinator deadline race (go.dev/issue/75804), no failing input: counted as a pass"
    races=$((races + 1))
    return 0
  fi
  return $rc
}
for pkg in "${pkgs[@]}"; do
  # go test -list prints test names then "ok"; keep the Fuzz ones.
  targets=$(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true)
  for f in $targets; do
    echo "== $pkg $f (${secs}s)"
    fuzz_one "$pkg" "$f"
    n=$((n + 1))
  done
done
echo "fuzz-smoke: $n targets, ${secs}s each, $races ended by the coordinator's deadline race, $(( $(date +%s) - start ))s total"
