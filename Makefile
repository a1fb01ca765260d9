# mcproxy developer targets. `make help` lists them.

GO       ?= go
BIN      := bin/mcproxy
IMAGE    ?= mcproxy
# The version is the release tag (v0.1.0, or v0.1.0-3-g<hash> after it),
# else the commit; see docs/operations.md, "Versions and releases".
ifeq ($(origin VERSION),undefined)
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
endif
LDFLAGS  := -X main.version=$(VERSION)
FUZZTIME ?= 30s
# staticcheck runs in `make test` at this pinned version.
STATICCHECK_VERSION := v0.8.2
# Where `make compare` writes its page and chart; empty: print only.
DOC      ?=
BENCH    ?= .
# Extra flags for mcproxy under `make run`, e.g. make run RUN_ARGS='-log-level debug'.
RUN_ARGS ?=
# The config `make run` gives mcproxy; memcached is started on the loopback
# ports of its backends. Copy it to try reloads: cp configs/local.yaml my.yaml;
# make run CONFIG=my.yaml, then edit my.yaml.
CONFIG   ?= configs/local.yaml
# Flags for cmd/mcsoak under `make soak`, e.g. make soak SOAK_ARGS='-duration 10m'.
SOAK_ARGS ?=


.DEFAULT_GOAL := help
.PHONY: help deps build run test fuzz bench compare soak docker push clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-8s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

deps: ## install memcached, gcc, dnsmasq and the client libraries the tests use (apt-get; root or sudo)
	bash .ci/install-deps

build: ## build bin/mcproxy with the version from git describe (the release tag)
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mcproxy

# On a terminal, devcluster.sh runs as a job of its own (bash -m) that holds the
# terminal, so Ctrl-C reaches it and not make: it stops mcproxy with one
# SIGTERM (mcproxy itself runs outside the terminal's process group, so the
# Ctrl-C is not a second signal), exits 0, and make prints no "Interrupt" or
# "Error 130".
run: build ## start 3 memcached on 127.0.0.1:11311-11313 and mcproxy (CONFIG, default configs/local.yaml); Ctrl-C drains and stops all
	@if [ -t 0 ]; then job=-m; else job=; fi; \
	MCPROXY='$(BIN)' CONFIG='$(CONFIG)' bash $$job -c 'bash scripts/devcluster.sh "$$@"; exit $$?' run.sh $(RUN_ARGS)

test: ## gofmt check, go vet, staticcheck, then race-enabled tests (needs memcached in PATH)
	@unformatted="$$(find . -name '*.go' -not -path './.git/*' -not -path './vendor/*' -not -path '*/testdata/*' -print0 | xargs -0 -r gofmt -l)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; echo "$$unformatted"; exit 1; \
	fi
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...
	$(GO) test -race -count=1 ./...

fuzz: ## run every Fuzz target in protocol/ for FUZZTIME (default 30s) each
	@targets="$$(grep -hoE '^func Fuzz[A-Za-z0-9_]*\(' protocol/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(/\1/' | sort -u)"; \
	if [ -z "$$targets" ]; then echo "fuzz: no Fuzz targets found in protocol/*_test.go"; exit 1; fi; \
	for t in $$targets; do \
		echo "== $$t ($(FUZZTIME))"; \
		$(GO) test -run='^$$' -fuzz="^$$t$$" -fuzztime=$(FUZZTIME) ./protocol/ || exit 1; \
	done

bench: ## run all benchmarks with allocation counts (BENCH=regexp to narrow)
	$(GO) test -run='^$$' -bench='$(BENCH)' -benchmem ./...

compare: build ## memcached, twemproxy, mcproxy at its defaults and with event_loops: 1, pinned and unpinned (scripts/compare.sh, ~11 min); DOC=docs/benchmarks.md writes the page
	MCPROXY=$(BIN) DOC='$(DOC)' bash scripts/compare.sh

soak: build ## build, then soak bin/mcproxy for ~3 min under backend kills and freezes, then ~3 min more with replicas: 2 (SOAK_ARGS); fails on a stale read
	$(GO) build -o bin/mcsoak ./cmd/mcsoak
	bin/mcsoak -mcproxy $(BIN) $(SOAK_ARGS)
	bin/mcsoak -mcproxy $(BIN) -replicas 2 $(SOAK_ARGS)

docker: ## build the image IMAGE:VERSION (default mcproxy:<git describe>), e.g. IMAGE=registry.example.com/team/mcproxy
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE):$(VERSION) .

push: docker ## build, then push IMAGE:VERSION to your registry (docker login first)
	docker push $(IMAGE):$(VERSION)

clean: ## remove build output
	rm -rf bin/
