#!/usr/bin/env bash
# MinIO for the S3 conformance tests: install (pinned, cached), start on
# loopback with a fresh data folder and random credentials, stop.
#
#   scripts/minio.sh install
#   eval "$(scripts/minio.sh start)"     # prints export lines
#   scripts/minio.sh stop                # uses $AIAAS_MINIO_PIDFILE
#
# Environment: AIAAS_TOOLS (default ~/.cache/aiaas/tools), AIAAS_MINIO_PORT
# (default: a free port), AIAAS_MINIO_PIDFILE (for stop).
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
# The client, for the tests that create users with the IAM policies of the
# template's roles (mc admin user/policy); the version minio's go.mod names.
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9
TOOLS=${AIAAS_TOOLS:-$HOME/.cache/aiaas/tools}
BIN=$TOOLS/bin/minio
MC=$TOOLS/bin/mc

log() { echo "minio.sh: $*" >&2; }

install() {
	mkdir -p "$TOOLS/bin"
	if [ -x "$BIN" ]; then
		log "using $BIN"
	else
		log "building github.com/minio/minio@$MINIO_VERSION into $TOOLS/bin (once; cached)"
		GOBIN="$TOOLS/bin" go install "github.com/minio/minio@$MINIO_VERSION"
	fi
	if [ -x "$MC" ]; then
		log "using $MC"
	else
		log "building github.com/minio/mc@$MC_VERSION into $TOOLS/bin (once; cached)"
		GOBIN="$TOOLS/bin" go install "github.com/minio/mc@$MC_VERSION"
	fi
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null ||
		echo $((20000 + RANDOM % 20000))
}

rand_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

start() {
	install
	local port=${AIAAS_MINIO_PORT:-$(free_port)}
	local dir
	dir=$(mktemp -d "${TMPDIR:-/tmp}/aiaas-minio.XXXXXX")
	local user="aiaas$(rand_hex 6)" pass
	pass=$(rand_hex 20)
	local kms
	kms="aiaas-test:$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
	MINIO_ROOT_USER=$user MINIO_ROOT_PASSWORD=$pass MINIO_KMS_SECRET_KEY=$kms \
		MINIO_BROWSER=off MINIO_UPDATE=off \
		nohup "$BIN" server --quiet --address "127.0.0.1:$port" "$dir/data" >"$dir/minio.log" 2>&1 &
	local pid=$!
	echo "$pid" >"$dir/minio.pid"
	local i
	for i in $(seq 1 150); do
		if curl -fsS "http://127.0.0.1:$port/minio/health/live" >/dev/null 2>&1; then
			echo "export AIAAS_TEST_S3_ENDPOINT=127.0.0.1:$port"
			echo "export AIAAS_TEST_S3_ACCESS_KEY=$user"
			echo "export AIAAS_TEST_S3_SECRET_KEY=$pass"
			echo "export AIAAS_TEST_S3_BUCKET=aiaas-test"
			echo "export AIAAS_TEST_S3_KMS_KEY=aiaas-test"
			echo "export AIAAS_MINIO_PIDFILE=$dir/minio.pid"
			echo "export AIAAS_TEST_MC=$MC"
			log "MinIO pid $pid on 127.0.0.1:$port, data in $dir"
			return
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			log "MinIO exited:"; cat "$dir/minio.log" >&2; exit 1
		fi
		sleep 0.2
	done
	log "MinIO did not become live in 30 s:"; cat "$dir/minio.log" >&2
	kill "$pid" 2>/dev/null || true
	exit 1
}

stop() {
	local pidfile=${1:-${AIAAS_MINIO_PIDFILE:-}}
	if [ -z "$pidfile" ] || [ ! -f "$pidfile" ]; then
		log "no pid file (AIAAS_MINIO_PIDFILE); nothing to stop"
		return
	fi
	local pid dir
	pid=$(cat "$pidfile")
	dir=$(dirname "$pidfile")
	kill "$pid" 2>/dev/null || true
	for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
	case "$dir" in */aiaas-minio.*) rm -rf "$dir" ;; esac
	log "stopped $pid"
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) shift; stop "$@" ;;
*) echo "usage: $0 install|start|stop [pidfile]" >&2; exit 2 ;;
esac
