# pginflux — see README.md (users) and CONTRIBUTING.md (engineers).
# `make run` and `make test` are the Quickstart.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
ARGS    ?=
# staticcheck, pinned: `go run` fetches this version from the module proxy.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build docker run test vet lint fuzz bench clean

all: build

# The same build as the Dockerfile's: static, trimmed, version stamped
# (deploy/deploy_test.go checks that the two commands stay the same).
build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/pginflux .

# The image (needs a Docker engine): distroless, non-root, same binary.
docker:
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(shell git rev-parse HEAD 2>/dev/null) -t pginflux:$(VERSION) .

# Runs pginflux. With no database configured (PGINFLUX_DATABASE_URL or
# DATABASE_URL), starts a throwaway PostgreSQL in .pgdata first. Extra
# flags: make run ARGS='--schema telegraf'.
run: build
	$(GO) build -o bin/devrun ./internal/devtools/devrun
	./bin/devrun -- ./bin/pginflux $(ARGS)

# The linters, then every test with the race detector, against a
# throwaway PostgreSQL (or PGINFLUX_TEST_DATABASE_URL). CI runs this.
test: lint
	$(GO) test -race -count=1 ./...

# gofmt, go vet and staticcheck: each must print nothing.
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzParser -fuzztime=60s ./parse/

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./...

clean:
	rm -rf bin
