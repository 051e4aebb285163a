#!/usr/bin/env bash
# lambda-build.sh — build every Lambda function (functions/<name>, a main
# package) as dist/<name>-<arch>/bootstrap for linux/arm64 and linux/amd64,
# zip each as dist/<name>-<arch>.zip (bootstrap at the root, mode 0755,
# reproducible), and print the sizes. Used by `make lambda`.
#
# Flags: CGO_ENABLED=0 (static, runs on provided.al2023 without glibc
# coupling), -tags lambda.norpc (drops aws-lambda-go's legacy net/rpc mode),
# -trimpath and -ldflags='-s -w' (smaller, no local paths in the binary).
#
# Environment: ARCHES (default "arm64 amd64"), DIST (default dist).
set -euo pipefail

cd "$(dirname "$0")/.."
ARCHES="${ARCHES:-arm64 amd64}"
DIST="${DIST:-dist}"
mkdir -p "$DIST"

fns=()
for d in functions/*/; do
	name="$(basename "$d")"
	[[ "$name" == internal ]] && continue
	if grep -qsE '^package main[[:space:]]*$' "$d"*.go; then
		fns+=("$name")
	fi
done
if [[ ${#fns[@]} -eq 0 ]]; then
	echo "lambda-build: no function main packages under functions/" >&2
	exit 1
fi

# Build the zip helper once instead of `go run` per function.
zipper="$(mktemp -d)/lambdazip"
trap 'rm -rf "$(dirname "$zipper")"' EXIT
go build -o "$zipper" ./functions/internal/lambdazip

rows=()
for name in "${fns[@]}"; do
	for arch in $ARCHES; do
		out="$DIST/$name-$arch"
		mkdir -p "$out"
		CGO_ENABLED=0 GOOS=linux GOARCH="$arch" \
			go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o "$out/bootstrap" "./functions/$name"
		"$zipper" "$out.zip" "$out/bootstrap"
		rows+=("$name $arch $(wc -c <"$out/bootstrap" | tr -d " ") $(wc -c <"$out.zip" | tr -d " ")")
	done
done

printf '%-10s %-6s %12s %12s\n' function arch bootstrap zip
for r in "${rows[@]}"; do
	# shellcheck disable=SC2086
	printf '%-10s %-6s %12s %12s\n' $r
done
