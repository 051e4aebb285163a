#!/usr/bin/env bash
# dynalite (npm: a DynamoDB implementation on LevelDB) for the tests of the
# shared quota store (platform/quota/dynamo): install (pinned, cached),
# start on loopback with a fresh data folder, stop.
#
#   scripts/dynalite.sh install
#   eval "$(scripts/dynalite.sh start)"     # prints export lines
#   scripts/dynalite.sh stop                # uses $AIAAS_DYNALITE_PIDFILE
#
# Environment: AIAAS_TOOLS (default ~/.cache/aiaas/tools),
# AIAAS_DYNALITE_PORT (default: a free port), AIAAS_DYNALITE_PIDFILE (stop).
set -euo pipefail

DYNALITE_VERSION=4.0.0
TOOLS=${AIAAS_TOOLS:-$HOME/.cache/aiaas/tools}
DIR=$TOOLS/dynalite-$DYNALITE_VERSION
CLI=$DIR/node_modules/dynalite/cli.js

log() { echo "dynalite.sh: $*" >&2; }

install() {
	if [ -f "$CLI" ]; then
		log "using $CLI"
		return
	fi
	command -v npm >/dev/null || { log "npm is needed (apt-get install nodejs npm)"; exit 1; }
	log "installing dynalite@$DYNALITE_VERSION into $DIR (once; cached)"
	mkdir -p "$DIR"
	npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "dynalite@$DYNALITE_VERSION" >&2
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
		echo $((20000 + RANDOM % 20000))
}

start() {
	install
	local port=${AIAAS_DYNALITE_PORT:-$(free_port)}
	local dir
	dir=$(mktemp -d "${TMPDIR:-/tmp}/aiaas-dynalite.XXXXXX")
	# --path: LevelDB on disk (not memory) as a real store would be;
	# --createTableMs 0: tables are ACTIVE at once (AWS takes seconds).
	nohup node "$CLI" --host 127.0.0.1 --port "$port" --path "$dir/data" \
		--createTableMs 0 --deleteTableMs 0 --updateTableMs 0 >"$dir/dynalite.log" 2>&1 &
	local pid=$!
	echo "$pid" >"$dir/dynalite.pid"
	local i
	for i in $(seq 1 150); do
		# Any HTTP answer means it listens (it answers 400 to a bare GET).
		if curl -sS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null; then
			echo "export AIAAS_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:$port"
			echo "export AIAAS_DYNALITE_PIDFILE=$dir/dynalite.pid"
			log "dynalite pid $pid on 127.0.0.1:$port, data in $dir"
			return
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			log "dynalite exited:"; cat "$dir/dynalite.log" >&2; exit 1
		fi
		sleep 0.2
	done
	log "dynalite did not listen in 30 s:"; cat "$dir/dynalite.log" >&2
	kill "$pid" 2>/dev/null || true
	exit 1
}

stop() {
	local pidfile=${1:-${AIAAS_DYNALITE_PIDFILE:-}}
	if [ -z "$pidfile" ] || [ ! -f "$pidfile" ]; then
		log "no pid file (AIAAS_DYNALITE_PIDFILE); nothing to stop"
		return
	fi
	local pid dir
	pid=$(cat "$pidfile")
	dir=$(dirname "$pidfile")
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
	case "$dir" in */aiaas-dynalite.*) rm -rf "$dir" ;; esac
	log "stopped $pid"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) shift; stop "$@" ;;
*) echo "usage: $0 install|start|stop [pidfile]" >&2; exit 2 ;;
esac
