#!/usr/bin/env bash
# The tabular example: a CSV of measurements → a training job on the
# server → a new model version → an endpoint → a prediction.
# flowers.csv is synthetic: three iris-like species, 200 rows each, drawn
# from Gaussians around the iris means (no download needed).
# Needs a running server (make run) and AIAAS_URL / AIAAS_KEY.
set -euo pipefail
cd "$(dirname "$0")/../.."
aiaas=${AIAAS_BIN:-bin/aiaas}

$aiaas dataset push flowers examples/tabular/flowers.csv
$aiaas job submit --model flowers --dataset flowers --layers 16 --epochs "${EPOCHS:-60}" --seed 1 --wait
$aiaas endpoint create flowers --model flowers
# A flower with long petals: species 2.
$aiaas invoke flowers examples/tabular/request.json --content-type application/json
