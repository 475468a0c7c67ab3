# hooxrelay — build, test and run.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
RELEASE_PLATFORMS := linux/amd64 linux/arm64
CONFIG ?= deploy/examples/hooxrelay.yaml

.PHONY: build test run demo bench bench-faults release fmt fuzz clean

build: ## writes bin/hooxrelay
	go build -trimpath -ldflags '$(LDFLAGS)' -o bin/hooxrelay ./cmd/hooxrelay

test: ## vet and race-enabled tests: the README's test command
	go vet ./...
	go test -race -count=1 ./...

run: build ## serves the example config on the embedded store
	./bin/hooxrelay serve --config $(CONFIG)

demo: build ## sample webhooks through a relay with local targets
	./bin/hooxrelay demo

bench: build ## relay vs bare baseline, same run; the sustained rate; a backlog of a million
	./bin/hooxrelay bench --duration 10s --senders 64
	./bin/hooxrelay bench --duration 10s --senders 64 --hold --process
	./bin/hooxrelay bench sustain --shaped
	./bin/hooxrelay bench backlog
	go test -run '^$$' -bench . -benchmem ./relay/... ./rules/...

bench-faults: build ## the fault scenarios at full size (about 10 minutes)
	./bin/hooxrelay bench burst --svg docs/bench-burst.svg
	./bin/hooxrelay bench dead-target --down 60s
	./bin/hooxrelay bench crash
	./bin/hooxrelay bench redis-outage --down 10s
	./bin/hooxrelay bench soak --duration 10m

fuzz: ## a short run of every fuzz target
	go test -run '^$$' -fuzz FuzzParsePayload -fuzztime 30s ./relay
	go test -run '^$$' -fuzz FuzzMatch -fuzztime 30s ./rules
	go test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./config
	go test -run '^$$' -fuzz FuzzVerifyHMAC -fuzztime 30s ./relay/verify
	go test -run '^$$' -fuzz FuzzVerifyStandardWebhooks -fuzztime 30s ./relay/verify
	go test -run '^$$' -fuzz FuzzVerifyToken -fuzztime 30s ./relay/verify

release: ## static binaries for linux/amd64 and linux/arm64 plus SHA256SUMS in dist/
	rm -rf dist && mkdir -p dist
	for p in $(RELEASE_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		echo "building dist/hooxrelay_$(VERSION)_$${os}_$${arch}"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags '$(LDFLAGS)' \
			-o dist/hooxrelay_$(VERSION)_$${os}_$${arch} ./cmd/hooxrelay || exit 1; \
	done
	cd dist && sha256sum hooxrelay_$(VERSION)_* > SHA256SUMS
	ls -l dist

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin data dist
