# Tributary: everything here runs offline (no AWS account needed) except deploy/destroy.
SHELL := /bin/bash
# jsii prints a banner on Node 20 (end of life) in go test too; the app still works there, Node 22+ is recommended.
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: synth test lint bench deps clean

deps: ## Check Go, Node.js and npm; install the pinned Node tools and download Go modules
	@.tools/check go node npm
	cd .tools && npm ci --no-audit --no-fund --loglevel=error
	go mod download

synth: deps ## Synthesize every stack to cdk.out (offline)
	rm -rf cdk.out
	@# Without the CLI's closing hint (a stack id to print a template): say what was written.
	@set -o pipefail; ./cdk synth --quiet 2>&1 | { grep -v '^Supply a stack id' || true; }
	@for t in cdk.out/*.template.json; do echo "wrote $$t"; done

test: deps ## Run all unit tests, then the producer's fault-injection suite (offline)
	@.tools/check cc
	go test ./...
	go test -tags faults -count=1 ./cmd/producer/

lint: ## gofmt and go vet
	@unformatted=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	  if [ -n "$$unformatted" ]; then echo "not gofmt-formatted: $$unformatted"; exit 1; fi
	go vet ./...

bench: deps ## Wall time of a warm synth and a warm test run; producer events per second; cost per event by packing
	@./cdk synth --quiet >/dev/null; go test ./... >/dev/null
	@TIMEFORMAT='warm cdk synth:     %R s (target < 15 s)'; time ./cdk synth --quiet >/dev/null
	@TIMEFORMAT='warm go test ./...: %R s (target < 60 s)'; time go test -count=1 ./... >/dev/null
	@go test -run '^$$' -bench Throughput -benchtime 20000x ./internal/producer | grep events/s
	@echo "500 events of 200 bytes through the rendered templates, per recordPacking:"
	@go test -run '^$$' -bench Cost -benchtime 1x ./test | grep '^BenchmarkCost/' 

clean:
	rm -rf cdk.out
