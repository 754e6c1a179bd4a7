# Capuchin. `make run` builds everything and starts the demo; `make test`
# runs the whole suite. See README.md.

GO       ?= go
BIN      := bin
PLUGINS  := $(notdir $(wildcard plugins/*))
PKGS     := ./...
# pgo NAME: the CPU profile binary NAME is built with (Go's profile-guided
# optimisation; make pgo records them in pgo/), off when it has none. They
# are not default.pgo files in the packages' folders, which go test would
# use too: tests build without.
pgo = $(if $(wildcard pgo/$(1).pgo),pgo/$(1).pgo,off)

.PHONY: all build plugins node-deps run test test-short soak bench pgo fuzz proto vet clean

all: build

build: $(BIN)/capuchin plugins $(BIN)/demo-backend

$(BIN)/capuchin: FORCE
	$(GO) build -pgo=$(call pgo,capuchin) -o $@ ./host

# Go plugins (plugins/*/main.go) are built; a Node.js plugin
# (plugins/*/main.js with package.json) gets its node_modules (node-deps)
# and a wrapper bin/plugins/NAME that runs node on its main.js. Without
# node and npm the Node.js plugins are skipped with a note.
plugins: node-deps
	@mkdir -p $(BIN)/plugins
	@for e in $(foreach p,$(PLUGINS),$(p):$(call pgo,$(p))); do \
		p=$${e%%:*} pgo=$${e#*:}; \
		if [ -f plugins/$$p/main.go ]; then \
			echo "$(GO) build -pgo=$$pgo -o $(BIN)/plugins/$$p ./plugins/$$p"; \
			$(GO) build -pgo=$$pgo -o $(BIN)/plugins/$$p ./plugins/$$p || exit 1; \
		elif [ -f plugins/$$p/main.js ] && [ -d plugins/$$p/node_modules ] && command -v node >/dev/null; then \
			echo "install $(BIN)/plugins/$$p (node plugins/$$p/main.js)"; \
			printf '#!/bin/sh\nexec node "%s" "$$@"\n' "$(CURDIR)/plugins/$$p/main.js" > $(BIN)/plugins/$$p || exit 1; \
			chmod 755 $(BIN)/plugins/$$p; \
		fi; \
	done

# npm ci for each Node.js plugin whose package-lock.json is newer than its
# node_modules; a note and nothing else when node or npm is missing.
node-deps:
	@for d in $(dir $(wildcard plugins/*/package.json)); do \
		if ! command -v npm >/dev/null || ! command -v node >/dev/null; then \
			echo "skipping $$d: node and npm not found (Debian: apt-get install nodejs npm)"; continue; \
		fi; \
		if [ ! -f $$d/node_modules/.package-lock.json ] || [ $$d/package-lock.json -nt $$d/node_modules/.package-lock.json ]; then \
			echo "npm ci --prefix $$d"; \
			npm ci --prefix $$d --no-audit --no-fund --loglevel=error || exit 1; \
		fi; \
	done

$(BIN)/demo-backend: FORCE
	$(GO) build -o $@ ./scripts/demo-backend

# Start two demo backends on 127.0.0.1:8081 and :8082 and the server on
# :2001 with conf/. Ctrl-C stops all three.
run: build
	./scripts/demo.sh

# The whole suite, with the race detector. Integration tests build the
# binaries themselves (node-deps: the Node.js plugin's test needs its
# node_modules).
test: vet node-deps
	$(GO) test -race -count=1 -timeout 12m $(PKGS)
	@# The 1 GiB transfers through the proxy, and the idle stacks (their size
	@# differs under -race), are skipped under -race.
	$(GO) test -count=1 -run 'TestE2EGiB|TestIdleLeasedStacks' ./plugins/proxy_reverse/
	@# Every generated differential input (under -race only a sample runs).
	$(GO) test -count=1 -run TestDifferentialGenerated ./api/http1/

# The soak (not part of make test): mixed traffic through the real host and
# proxy for SOAKTIME (default 3m) while backends restart and the plugin is
# killed once; prints a summary. See TestSoak in plugins/proxy_reverse.
SOAKTIME ?= 3m
soak:
	CAPUCHIN_SOAK=1 CAPUCHIN_SOAK_DURATION=$(SOAKTIME) $(GO) test -count=1 -timeout 30m -run '^TestSoak$$' -v ./plugins/proxy_reverse/

test-short:
	$(GO) test -count=1 -short $(PKGS)

# vet also fails when go.mod and go.sum are not tidy (CI runs it first).
vet:
	$(GO) vet $(PKGS)
	@# The host and the SDK build elsewhere too (stage-30 plugins need Linux).
	GOOS=darwin $(GO) build ./...
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	@test -z "$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$'))" || { gofmt -l .; echo "gofmt needed"; exit 1; }

# Capuchin beside nginx and HAProxy, ratios over interleaved rounds (see
# README.md, Performance). BENCH_QUICK=1 checks the script in a minute or two.
bench: build $(BIN)/idleconns $(BIN)/floorproxy
	./scripts/bench.sh

# Re-record the profiles the binaries are built with (pgo/NAME.pgo) from
# the bench's load, then rebuild with them. See scripts/pgo.sh.
pgo: build
	./scripts/pgo.sh
	$(MAKE) build

$(BIN)/idleconns: FORCE
	$(GO) build -o $@ ./scripts/idleconns

$(BIN)/floorproxy: FORCE
	$(GO) build -o $@ ./scripts/floorproxy

# Run every fuzz target for FUZZTIME each (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./api/http1 -run '^$$' -fuzz '^FuzzReadRequest$$' -fuzztime $(FUZZTIME)
	$(GO) test ./api/http1 -run '^$$' -fuzz '^FuzzChunkedBody$$' -fuzztime $(FUZZTIME)
	$(GO) test ./api/http1 -run '^$$' -fuzz '^FuzzRequestDifferential$$' -fuzztime $(FUZZTIME)
	$(GO) test ./api/http1 -run '^$$' -fuzz '^FuzzResponseDifferential$$' -fuzztime $(FUZZTIME)
	$(GO) test ./host/static -run '^$$' -fuzz '^FuzzCleanPath$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/transport -run '^$$' -fuzz '^FuzzPeerEvent$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/transport -run '^$$' -fuzz '^FuzzPeerReply$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/transport -run '^$$' -fuzz '^FuzzDecodeNotes$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/transport -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/recordwire -run '^$$' -fuzz '^FuzzSplitReply$$' -fuzztime $(FUZZTIME)
	$(GO) test ./api/conf -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./host/config -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME)
	$(GO) test ./plugins/proxy_reverse/config -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./plugins/logger -run '^$$' -fuzz '^FuzzFormats$$' -fuzztime $(FUZZTIME)

proto:
	./scripts/proto.sh

clean:
	rm -rf $(BIN)

FORCE:
