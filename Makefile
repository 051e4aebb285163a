# aiaas — the two commands are `make run` and `make test`; everything else
# is a step they use or a longer run (bench, soak).
SHELL := /bin/bash
GO    ?= go
BIN   := bin
TOOLS ?= $(HOME)/.cache/aiaas/tools
export AIAAS_TOOLS := $(TOOLS)

.PHONY: all build run test test-short vet fmt plugins lambda bench soak clean deps minio

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

## deps: what a fresh machine lacks (Debian packages, MinIO, MNIST data)
deps:
	scripts/deps.sh

## test: install what is missing, start MinIO, run every test
test: deps
	scripts/test.sh

## vet / fmt: static checks
vet:
	$(GO) vet ./...
fmt:
	gofmt -l -w $$(git ls-files '*.go')

clean:
	rm -rf $(BIN) build dist
