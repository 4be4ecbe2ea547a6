# Tributary: everything here runs offline (no AWS account needed) except deploy/destroy.
SHELL := /bin/bash
# jsii prints a banner on Node 20 (end of life) in go test too; the app still works there, Node 22+ is recommended.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: synth test lint bench bench-producer deps clean local local-check local-query bin/producer bin/local

deps: .tools/node_modules/.package-lock.json ## Check Go, Node.js and npm; install the pinned Node tools (only when the lock changed) and download Go modules
	@.tools/check go node npm
	go mod download

# npm writes node_modules/.package-lock.json on every install: reinstall only when the lock file changed.
.tools/node_modules/.package-lock.json: .tools/package-lock.json
	@.tools/check node npm
	cd .tools && npm ci --no-audit --no-fund --loglevel=error

synth: deps ## Synthesize every stack to cdk.out (offline)
	rm -rf cdk.out
	@# Without the CLI's closing hint (a stack id to print a template): say what was written.
	@set -o pipefail; ./cdk synth --quiet 2>&1 | { grep -v '^Supply a stack id' || true; }
	@for t in cdk.out/*.template.json; do echo "wrote $$t"; done

test: deps ## Run all unit tests, then the producer's fault-injection suite (offline)
	@.tools/check cc
	go test ./...
	go test -tags faults -count=1 ./cmd/producer/
	go test -tags faults -count=1 -run TestFaultLocal ./test/

lint: ## gofmt and go vet
	@unformatted=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "not gofmt-formatted: $$unformatted"; exit 1; fi
	go vet ./...

bench: deps ## Wall time of a warm synth and a warm test run; producer events per second and the cost of 20,000 followed files; cost per event by packing
	@./cdk synth --quiet >/dev/null; go test ./... >/dev/null
	@TIMEFORMAT='warm cdk synth:     %R s (target < 15 s)'; time ./cdk synth --quiet >/dev/null
	@TIMEFORMAT='warm go test ./...: %R s (target < 60 s)'; time go test -count=1 ./... >/dev/null
	@go test -run '^$$' -bench Throughput -benchtime 20000x ./internal/producer | grep events/s
	@echo "20,000 followed files, one growing (targets: cpu-fraction < 0.05 of a core, rss-MB < 64):"
	@go test -run '^$$' -bench ManyFilesOneGrowing -benchtime 10x ./internal/producer 2>/dev/null | grep cpu-fraction
	@echo "200-byte events in full batches through the rendered templates, per recordPacking (target PACKED <= 0.010 \$$/Mev):"
	@go test -run '^$$' -bench Cost -benchtime 1x ./test | grep '^BenchmarkCost/' 
	@echo "the local pipeline's API (batches of 500 events, target >= 5,000 events/s):"
	@go test -run '^$$' -bench LocalAPI -benchtime 200x ./internal/local | grep events/s

# BENCH_FLAGS passes flags to the harness: make bench-producer BENCH_FLAGS='-lines 100000 -runs 1' (quick)
bench-producer: ## The producer binary against a raw floor client on loopback: events/s, CPU s per million events, peak RSS, bytes on the wire, tail latency (docs/producer.md "Performance")
	go run ./cmd/benchproducer $(BENCH_FLAGS)

bin/producer bin/local: ## Build the producer and the local pipeline (static binaries)
	CGO_ENABLED=0 go build -o $@ ./cmd/$(notdir $@)

# The local runs read cdk.out, not the CLI's closing hint (a stack id to print a template): drop it.
quiet_synth = set -o pipefail; ./cdk synth --quiet $(CDK_CONTEXT) 2>&1 >/dev/null | { grep -v '^Supply a stack id' || true; }

# CDK_CONTEXT passes settings to the synth, as -c does: make local CDK_CONTEXT='-c recordPacking=PER_EVENT'
local: deps bin/producer bin/local local-assembly ## Run the whole pipeline on this machine from the synthesized app (Ctrl-C stops it)
	./bin/local up

# The local pipeline runs what cdk.out holds: synthesize again only when the app's sources or the
# settings (CDK_CONTEXT, kept in cdk.out/.context) changed since, so a warm `make local` starts in seconds.
LOCAL_SOURCES := app.go cdk.json go.mod go.sum $(wildcard cdk.context.json) cmd constructs internal
.PHONY: local-assembly
local-assembly: deps
	@if [ -f cdk.out/manifest.json ] && [ -f cdk.out/.context ] && [ ! cdk.out/manifest.json -nt cdk.out/.context ] && [ "$$(cat cdk.out/.context)" = "$$CDK_CONTEXT" ] && \
	  [ -z "$$(find $(LOCAL_SOURCES) -newer cdk.out/manifest.json -print -quit)" ]; then \
	  echo "cdk.out is up to date with the sources and CDK_CONTEXT='$$CDK_CONTEXT': not synthesizing again"; \
	else \
	  rm -rf cdk.out && { $(quiet_synth); } && printf '%s' "$$CDK_CONTEXT" >cdk.out/.context && \
	  echo "synthesized cdk.out with CDK_CONTEXT='$$CDK_CONTEXT'"; \
	fi
export CDK_CONTEXT

local-query: bin/local ## Run a saved query by name, or SQL, over what landed locally: make local-query Q='Events per hour'
	@./bin/local query "$(Q)"

local-check: deps bin/producer bin/local local-assembly ## Run the local pipeline once with a known set of events; exit 0 only if all landed and were counted
	./bin/local check

clean:
	rm -rf cdk.out bin
