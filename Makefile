# bulwark — see README.md. Every target works from a clean clone.
GO          ?= go
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         ?= bin
VERSION     ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)

.PHONY: run build test fmt lint ci e2e e2e-lint up down

## run: start the API on :8000 with embedded defaults (in-memory store, noop telemetry)
run:
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/api

## build: build every command into ./bin
build:
	@mkdir -p $(BIN)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/ ./cmd/...

## test: the whole test suite with the race detector (Postgres/Redis tests use TEST_DATABASE_URL / TEST_REDIS_URL)
test:
	$(GO) test -race -count=1 -timeout 10m ./...

## fmt: format the code
fmt:
	gofmt -w $$(git ls-files '*.go')

## lint: gofmt, go vet and staticcheck must be clean
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

## ci: what .ci/run runs (then make e2e)
ci: lint test

## e2e: the observability pipeline end to end (docs/OBSERVABILITY.md). Builds what is missing
## (collector ~100 s, Jaeger ~5 min once; Prometheus from apt), starts collector + Jaeger +
## Prometheus on free ports (otel-collector/e2e-stack.sh), runs the otel-collector/e2e module's
## tests against them (the service against the local Postgres and Redis), stops the stack.
E2E_TEST_FLAGS ?= -count=1 -v -timeout 20m
e2e: e2e-lint
	otel-collector/e2e-stack.sh run sh -c 'cd otel-collector/e2e && E2E_STACK=1 $(GO) test $(E2E_TEST_FLAGS) ./...'

## e2e-lint: gofmt and go vet of the e2e module (separate go.mod)
e2e-lint:
	@out=$$(cd otel-collector/e2e && gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed in otel-collector/e2e:"; echo "$$out"; exit 1; fi
	cd otel-collector/e2e && $(GO) vet ./...

## up: the compose stack (app, Postgres, Redis, collector, Prometheus, Jaeger, Grafana); needs Docker
up:
	docker compose up -d --build

## down: stop it and delete its volumes
down:
	docker compose down -v
