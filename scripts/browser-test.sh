#!/usr/bin/env bash
# browser-test.sh — the console's browser tests: Debian's chromium driven
# by playwright-core under node's test runner. Installs chromium and the
# npm deps if missing, builds aiaas, starts `aiaas serve --demo` on a free
# loopback port with a throw-away store, runs test/browser, stops the
# server. Screenshots land in test/browser/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

if ! command -v chromium >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium
fi
export CHROMIUM=${CHROMIUM:-$(command -v chromium)}
if [ ! -d test/browser/node_modules/playwright-core ]; then
  (cd test/browser && npm ci --no-audit --no-fund)
fi

tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# The demo's endpoints need these (the text ones wordpiece, bpe and pool).
for name in png-to-tensor top-k wordpiece bpe pool; do
  if [ ! -f "build/plugins/$name.wasm" ]; then scripts/build-plugins.sh build/plugins; break; fi
done
go build -o "$tmp/aiaas" ./cmd/aiaas
port=$(freeport)
AIAAS_STORE="file://$tmp/store" "$tmp/aiaas" serve --demo --plugins-dir build/plugins \
  --addr "127.0.0.1:$port" >"$tmp/serve.log" 2>&1 &
pids+=($!)
base="http://127.0.0.1:$port"

# The first start trains MNIST: the MLP and the CNN (~30 s on 2 cores); allow 300 s.
for _ in $(seq 300); do
  if [ -s "$tmp/store/demo/key" ] && curl -fsS "$base/v2/health/ready" >/dev/null 2>&1 &&
     grep -q "is ready" "$tmp/serve.log"; then break; fi
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$tmp/serve.log" >&2; exit 1; }
  sleep 1
done
curl -fsS "$base/v2/health/ready" >/dev/null || { echo "server not ready" >&2; cat "$tmp/serve.log" >&2; exit 1; }

url=$base
curl -fsS -o /dev/null "$url/console/" || { echo "the server does not serve /console/" >&2; exit 1; }

echo "browser tests against $url" >&2
cd test/browser
AIAAS_URL="$url" AIAAS_KEY="$(cat "$tmp/store/demo/key")" node --test --test-concurrency=1 unit.test.js console.test.js
