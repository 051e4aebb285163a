# aiaas — the two commands are `make run` and `make test`; everything else
# is a step they use or a longer run (bench, soak, lambda).
SHELL := /bin/bash
GO    ?= go
BIN   := bin
TOOLS ?= $(HOME)/.cache/aiaas/tools
export AIAAS_TOOLS := $(TOOLS)

.PHONY: all build run test vet fmt plugins lambda bench bench-serve soak clean deps

all: build

## build: the aiaas CLI and server
build:
	$(GO) build -trimpath -o $(BIN)/aiaas ./cmd/aiaas

## plugins: the example WebAssembly plugins, built from source
plugins:
	scripts/build-plugins.sh build/plugins

## run: the local server on ./data with a demo tenant, model, plugins and endpoint
run: build plugins
	$(BIN)/aiaas serve --demo --plugins-dir build/plugins

## deps: what a fresh machine lacks (Debian packages, Go modules, MNIST, MinIO)
deps:
	scripts/deps.sh

## test: install what is missing, start MinIO, run every test
test: deps
	scripts/test.sh

## lambda: each Lambda function as bootstrap for arm64 and amd64, zipped under dist/
lambda:
	scripts/lambda-build.sh

## bench: side by side with ONNX Runtime and TensorFlow.js, scaling → bench/results/
bench:
	bench/run.sh

## bench-serve: wrk against a running server and the HTTP floor
##   make bench-serve URL=http://127.0.0.1:8080 KEY=aiaas_… MODEL=mnist ENDPOINT=mnist
##   (AIAAS_PID=<the server's pid> adds its CPU time per request to each row)
bench-serve:
	bench/serve/run.sh $(URL) $(KEY) $(MODEL) $(ENDPOINT) 10

## soak: the long forms of the hardening tests and fuzzing
soak: deps
	scripts/soak.sh

vet:
	$(GO) vet ./...
fmt:
	gofmt -l -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) build dist
