#!/usr/bin/env bash
# rie.sh — install and run the AWS Lambda Runtime Interface Emulator (RIE).
#
# Usage:
#   scripts/rie.sh install            # go install aws-lambda-rie into $AIAAS_TOOLS/bin (idempotent)
#   scripts/rie.sh path               # print the path of the installed binary
#   scripts/rie.sh run BOOTSTRAP [ADDR]
#                                     # run BOOTSTRAP under the emulator on ADDR (default 127.0.0.1:8080)
#
# The emulator needs no Docker: it is a Go program that implements the Lambda
# Runtime API for one function process and exposes the invoke API. Invoke with
#   curl -s -XPOST "http://ADDR/2015-03-31/functions/function/invocations" -d @event.json
#
# Flags of aws-lambda-rie used here (read from its source, cmd/aws-lambda-rie/main.go):
#   --runtime-interface-emulator-address ADDR   listen address of the invoke API (default 0.0.0.0:8080)
#   --log-level LEVEL                           emulator log level
# The emulator passes AWS_LAMBDA_FUNCTION_TIMEOUT etc. through from its own environment.
set -euo pipefail

RIE_MODULE="github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"
RIE_VERSION="v0.0.0-20261030222936-bef5c4ba774d"
TOOLS="${AIAAS_TOOLS:-$HOME/.cache/aiaas/tools}"
BIN="$TOOLS/bin/aws-lambda-rie"

cmd="${1:-install}"
case "$cmd" in
install)
	if [[ -x "$BIN" ]]; then
		echo "aws-lambda-rie: already installed at $BIN"
		exit 0
	fi
	mkdir -p "$TOOLS/bin"
	# GOFLAGS is cleared so that a -mod=vendor or similar setting of the caller
	# does not apply to a tool install outside our module.
	GOBIN="$TOOLS/bin" GOFLAGS= CGO_ENABLED=0 go install "$RIE_MODULE@$RIE_VERSION"
	echo "aws-lambda-rie: installed at $BIN"
	;;
path)
	echo "$BIN"
	;;
run)
	bootstrap="${2:?usage: rie.sh run BOOTSTRAP [ADDR]}"
	addr="${3:-127.0.0.1:8080}"
	[[ -x "$BIN" ]] || { echo "aws-lambda-rie not installed: run scripts/rie.sh install" >&2; exit 1; }
	exec "$BIN" --log-level error --runtime-interface-emulator-address "$addr" "$bootstrap"
	;;
*)
	echo "usage: $0 install|path|run BOOTSTRAP [ADDR]" >&2
	exit 2
	;;
esac
