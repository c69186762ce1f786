# gonat. Targets need root where they touch namespaces (demo, test); CI runs as root.
GO ?= go
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
BIN := bin/gonat

.PHONY: build test unit e2e demo bench lint deps fuzz clean

build:
	$(GO) build -o $(BIN) ./cmd/gonat

deps:
	@scripts/deps.sh test

# The README's test command: lint, unit tests, end-to-end tests in real
# namespaces through real TUN devices, all with the race detector.
test: deps lint
	$(GO) test -race -count=1 -timeout 20m ./...

unit:
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /tests)

e2e:
	$(GO) test -race -count=1 -v -timeout 20m ./tests/

lint:
	@fmt=$$(gofmt -l .); if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

# The README's first command: a throwaway lab showing each NAT type at work.
demo: build
	@scripts/deps.sh
	./$(BIN) demo

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./header/ ./table/ ./nat/

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime 30s ./header/

clean:
	rm -rf bin
