# Capuchin. `make run` builds everything and starts the demo; `make test`
# runs the whole suite. See README.md.

GO       ?= go
BIN      := bin
PLUGINS  := $(notdir $(wildcard plugins/*))
PKGS     := ./...

.PHONY: all build plugins run test test-short bench fuzz proto vet clean

all: build

build: $(BIN)/capuchin plugins $(BIN)/demo-backend

$(BIN)/capuchin: FORCE
	$(GO) build -o $@ ./host

plugins:
	@mkdir -p $(BIN)/plugins
	@for p in $(PLUGINS); do \
		if [ -f plugins/$$p/main.go ]; then \
			echo "$(GO) build -o $(BIN)/plugins/$$p ./plugins/$$p"; \
			$(GO) build -o $(BIN)/plugins/$$p ./plugins/$$p || exit 1; \
		fi; \
	done

$(BIN)/demo-backend: FORCE
	$(GO) build -o $@ ./scripts/demo-backend

# Start two demo backends on 127.0.0.1:8081 and :8082 and the server on
# :2001 with conf/. Ctrl-C stops all three.
run: build
	./scripts/demo.sh

# The whole suite, with the race detector. Integration tests build the
# binaries themselves.
test: vet
	$(GO) test -race -count=1 -timeout 12m $(PKGS)
	@# The 1 GiB transfers through the proxy are skipped under -race (too slow).
	$(GO) test -count=1 -run TestE2EGiB ./plugins/proxy_reverse/

test-short:
	$(GO) test -count=1 -short $(PKGS)

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }

# Capuchin beside nginx and HAProxy, ratios over interleaved rounds (see
# README.md, Performance). BENCH_QUICK=1 checks the script in a minute or two.
bench: build $(BIN)/idleconns
	./scripts/bench.sh

$(BIN)/idleconns: FORCE
	$(GO) build -o $@ ./scripts/idleconns

# Run every fuzz target for FUZZTIME each (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./api/http1 -run '^$$' -fuzz '^FuzzReadRequest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./api/http1 -run '^$$' -fuzz '^FuzzChunkedBody$$' -fuzztime $(FUZZTIME)

proto:
	./scripts/proto.sh

clean:
	rm -rf $(BIN)

FORCE:
