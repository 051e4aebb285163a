#!/usr/bin/env bash
# Serving benchmark: wrk against a running aiaas and against the HTTP floor
# (serve/floor: a bare net/http handler reading the same bodies), same
# machine, same connections, back to back.
#
#   bench/serve/run.sh URL KEY MODEL [ENDPOINT] [SECONDS]
#   bench/serve/run.sh floor          # the floor alone (self-test)
#
# URL is aiaas' base URL (http://127.0.0.1:8080), KEY a tenant API key,
# MODEL an MNIST model of that tenant (input "input", output
# "probabilities"), ENDPOINT an endpoint whose preprocess plugin takes a PNG
# (png-to-tensor); leave it empty or "-" to skip. Env: CONNS (64), THREADS
# (2), OUT (bench/results/serve.json), WARMUP (2: seconds of the same load,
# not measured, before each row; 0 skips it), AIAAS_PID (the server's
# process on this machine: its rows then report CPU per request too).
#
# Each row also reports the server's CPU time per request (user + system,
# from /proc, the floor's always): wrk and the kernel share the machine's
# cores, and this separates the server's own cost from theirs.
#
# The warm-up makes each row a steady state: without it the endpoint row
# starts with its plugins cold (compiled code fetched, instances created
# under 64 waiting connections), and its p99 measures that start-up rather
# than serving. Cold starts are measured on their own (BENCHMARKS.md,
# docs/plugins.md).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bench=$(dirname "$here")
conns=${CONNS:-64}
threads=${THREADS:-2}
warmup=${WARMUP:-2}
out=${OUT:-$bench/results/serve.json}

if ! command -v wrk >/dev/null; then
  (apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; })
fi

if [ "${1:-}" = floor ]; then url=""; key=""; model=""; endpoint="-"; secs=${2:-5}
else
  [ $# -ge 3 ] || { sed -n '2,15p' "$0"; exit 2; }
  url=$1; key=$2; model=$3; endpoint=${4:--}; secs=${5:-10}
fi

tmp=$(mktemp -d)
floor_pid=""
cleanup() { [ -n "$floor_pid" ] && kill "$floor_pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
(cd "$bench" && go run ./serve/body -dir "$tmp" >/dev/null && go build -o "$tmp/floor" ./serve/floor)
floor_addr=127.0.0.1:${FLOOR_PORT:-18099}
"$tmp/floor" -addr "$floor_addr" 2>"$tmp/floor.log" &
floor_pid=$!
for _ in $(seq 50); do curl -s -o /dev/null "http://$floor_addr/" -d x && break; sleep 0.1; done

# cpu PID: the process' user + system time in clock ticks ("" if unknown)
cpu() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && awk '{print $14 + $15}' "/proc/$1/stat" || true; }

# run NAME URL BODY CTYPE KEY HDRLEN PID → one JSON line
run() {
  local name=$1 target=$2 body=$3 ctype=$4 k=$5 hl=$6 pid=${7:-}
  # load SECONDS [wrk flags]: the row's load for that long
  load() {
    local d=$1; shift
    BODY=$body CTYPE=$ctype KEY=$k HDRLEN=$hl wrk -t"$threads" -c"$conns" -d"${d}s" "$@" \
      -s "$here/post.lua" "$target" 2>&1 || true
  }
  [ "$warmup" = 0 ] || load "$warmup" >/dev/null
  local c0 c1 n us=null
  c0=$(cpu "$pid")
  load "$secs" --latency >"$tmp/wrk.txt"
  c1=$(cpu "$pid")
  n=$(awk '/requests in/ {print $1}' "$tmp/wrk.txt")
  if [ -n "$c0" ] && [ -n "$c1" ] && [ "${n:-0}" -gt 0 ]; then
    us=$(awk -v d=$((c1 - c0)) -v n="$n" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.1f", d * 1e6 / hz / n}')
  fi
  local rps p50 p99 non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk.txt")
  p50=$(awk '$1=="50%" {print $2}' "$tmp/wrk.txt")
  p99=$(awk '$1=="99%" {print $2}' "$tmp/wrk.txt")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$tmp/wrk.txt"); non2xx=${non2xx:-0}
  if [ -z "$rps" ]; then cat "$tmp/wrk.txt" >&2; echo "wrk failed for $name" >&2; exit 1; fi
  printf '{"name":"%s","url":"%s","requests_per_sec":%s,"p50":"%s","p99":"%s","non_2xx":%s,"server_cpu_us_per_request":%s}\n' \
    "$name" "$target" "$rps" "$p50" "$p99" "$non2xx" "$us"
}

hl=$(cat "$tmp/infer.bin.hdrlen")
{
  apid=${AIAAS_PID:-}
  run "floor json" "http://$floor_addr/v2/models/mnist/infer" "$tmp/infer.json" application/json "" "" "$floor_pid"
  if [ -n "$url" ]; then
    run "aiaas json" "$url/v2/models/$model/infer" "$tmp/infer.json" application/json "$key" "" "$apid"
  fi
  run "floor binary" "http://$floor_addr/v2/models/mnist/infer" "$tmp/infer.bin" application/octet-stream "" "$hl" "$floor_pid"
  if [ -n "$url" ]; then
    run "aiaas binary" "$url/v2/models/$model/infer" "$tmp/infer.bin" application/octet-stream "$key" "$hl" "$apid"
  fi
  if [ -n "$url" ] && [ "$endpoint" != - ]; then
    run "floor png" "http://$floor_addr/v1/endpoints/x/invoke" "$tmp/digit.png" image/png "" "" "$floor_pid"
    run "aiaas endpoint png" "$url/v1/endpoints/$endpoint/invoke" "$tmp/digit.png" image/png "$key" "" "$apid"
  fi
} >"$tmp/rows.jsonl"

mkdir -p "$(dirname "$out")"
{
  printf '{"command":"%s","date":"%s","nproc":%s,"cpu":"%s","connections":%s,"threads":%s,"seconds":%s,"warmup_seconds":%s,"rows":[' \
    "bench/serve/run.sh $*" "$(date -u +%FT%TZ)" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" "$conns" "$threads" "$secs" "$warmup"
  paste -sd, "$tmp/rows.jsonl"
  printf ']}\n'
} >"$out"

echo "Serving, wrk -t$threads -c$conns -d${secs}s --latency, $(nproc) CPUs (wrk shares them with the server)"
echo
echo "| target | req/s | p50 | p99 | non-2xx | vs floor | server CPU µs/request |"
echo "|---|---:|---:|---:|---:|---:|---:|"
awk -F'"' '
  { for (i = 1; i <= NF; i++) { if ($i == "name") n = $(i+2); if ($i == "p50") a = $(i+2); if ($i == "p99") b = $(i+2) }
    match($0, /"requests_per_sec":[0-9.]+/); r = substr($0, RSTART + 19, RLENGTH - 19)
    match($0, /"non_2xx":[0-9]+/); e = substr($0, RSTART + 10, RLENGTH - 10)
    c = "-"; if (match($0, /"server_cpu_us_per_request":[0-9.]+/)) c = substr($0, RSTART + 28, RLENGTH - 28)
    split(n, w, " "); kind = w[length(w)]
    if (w[1] == "floor") { floor[kind] = r; ratio = "1.00" } else { ratio = (floor[kind] > 0) ? sprintf("%.2f", r / floor[kind]) : "-" }
    printf "| %s | %s | %s | %s | %s | %s× | %s |\n", n, r, a, b, e, ratio, c }' "$tmp/rows.jsonl"
echo
echo "written: $out"
