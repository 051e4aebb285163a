#!/usr/bin/env bash
# soak.sh (make soak): the long forms of the hardening suite on MinIO,
# then every fuzz target for FUZZTIME seconds (default 60) each.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/minio.sh start)"
trap 'scripts/minio.sh stop >/dev/null 2>&1 || true' EXIT
export AIAAS_REQUIRE_S3=1 AIAAS_SOAK=1
# The hardening tests repeated 5 times under the race detector catch
# interleavings a single run misses.
# The bounded load, outage, crash and hostile-plugin tests run once in
# their long forms (60 s of load per target, 5 hostile rounds, 40 calls
# during the outage), verbose so their figures land in the log.
long='TestLoad|TestStorageOutage|TestCrashDuringPublish|TestHostilePluginsThroughEndpoints'
go test -race -count=5 -timeout 30m -skip "$long" ./test/hardening/
go test -race -count=1 -timeout 20m -v -run "$long" ./test/hardening/
scripts/fuzz-smoke.sh "${FUZZTIME:-60}"
