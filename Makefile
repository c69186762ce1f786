# gonat. Targets need root where they touch namespaces (demo, test); CI runs as root.
GO ?= go
STATICCHECK ?= $(shell $(GO) env GOPATH)/bin/staticcheck
BIN ?= bin/gonat
PREFIX ?= /usr/local
# Fuzzing time per target: make fuzz, and the short pass of make test.
FUZZTIME ?= 30s
# make test fuzzes by count, not time: a count has no deadline to race
# (go.dev/issue/75804) and does the same work on a fast or a busy machine.
TEST_FUZZTIME ?= 5000x
# How long make soak churns flows through one gonat.
SOAK ?= 10m

.PHONY: build install uninstall test unit e2e demo bench bench-scale lint deps fuzz soak clean

# -buildvcs=auto: gonat version names the commit even where GOFLAGS turns
# VCS stamping off.
build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/gonat

# gonat on PATH (sudo finds /usr/local/bin), with its shell completions.
# DESTDIR stages the files for a package.
install: build
	install -D -m 0755 $(BIN) $(DESTDIR)$(PREFIX)/bin/gonat
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions \
		$(DESTDIR)$(PREFIX)/share/zsh/site-functions $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
	$(abspath $(BIN)) completion bash > $(DESTDIR)$(PREFIX)/share/bash-completion/completions/gonat
	$(abspath $(BIN)) completion zsh > $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_gonat
	$(abspath $(BIN)) completion fish > $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/gonat.fish

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/gonat $(DESTDIR)$(PREFIX)/share/bash-completion/completions/gonat \
		$(DESTDIR)$(PREFIX)/share/zsh/site-functions/_gonat $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/gonat.fish

deps:
	@scripts/deps.sh test

# The README's test command: lint, unit tests, end-to-end tests in real
# namespaces through real TUN devices, all with the race detector; the
# end-to-end suite once per TUN backend (auto picks offload where the
# kernel has it). go test runs each fuzz target's seed corpus; then each
# target is fuzzed briefly (TEST_FUZZTIME).
test: deps lint
	$(GO) test -race -count=1 -timeout 20m ./...
	GO=$(GO) scripts/fuzz.sh $(TEST_FUZZTIME)
	GONAT_TUN_BACKEND=water $(GO) test -race -count=1 -timeout 20m -skip '$(BACKEND_FREE)' ./tests/

# End-to-end tests whose subject is not the data path (the CLI, lab
# lifecycle, host commands, labtest, traversal outcomes, observation,
# impairments and timeouts, which sit above the TUN reader): the water
# pass would only repeat them, at half its time.
BACKEND_FREE := ^(TestMatrix|TestICEJudge|TestLabLifecycleCLI|TestHelpAndVersion|TestHelpTeaches|TestRunBadFlags|TestLabValidate|TestMakeInstall|TestLabtestFromAnotherModule|TestLabHostCommandsInBackground|TestHostReadiness|TestLabUpForegroundShowsHostOutput|TestLabUpFailsOnHostExit|TestLabSeeds|TestRunSeedDrawnAndRepeatable|TestPeerReportAfterNATChange|TestPeerStrictAndPermissive|TestRunNameNamesNAT|TestWebViewLabStable|TestLabDownAll|TestLabCLIAndCrash|TestProbeProgressAndWaits|TestLabUpDetachedLogsEvents|TestSoakSmoke|TestFilteringSweep|TestLimitOneHostFlood|TestLimitOutsideSYNFlood|TestSpoofedInsideSourceDropped|TestMartianSourcesDropped|TestMartianDestinationsNotSent|TestBadHeaderChecksumDropped|TestICMPErrorsRateLimited|TestRunDualStackBadFlags|TestImpairBadSpec|TestRunDoubleStartRefused|TestRunRestartAfterKill9|TestPcapSymlinkRefused|TestWebEventStreamsCapped|TestWebNonLoopbackRefused|TestLabUpWarnsAndHoldsNamespaces|TestLabDNS|TestLabDNSRemoveAfterCrash|TestHappyEyeballsInLab|TestDualStackNestedLab|TestTCPForgedTeardown|TestNetnsSetupScript|TestDemo|TestTwoLabsSideBySide|TestLabVerify|TestVerifyCatchesMismatch|TestFirewallBlockUDP|TestFirewallWebOnly|TestIPv6NPTv6|TestHappyEyeballsDualStack|TestIPv6Refused|TestRunDualStackPorts|TestRebindReboot|TestScheduledEvents|TestWebViewLive|TestLabPcapDir|TestTableWatch|TestTableJSON|TestMetrics|TestExamplesComeUp|TestLabImpairAtRunTime|TestImpairLossSeeded|TestImpairDelayPing|TestLabSetAndFlush|TestPeersThroughLabExec|TestLabHostImpairLoss|TestUDPMappingExpires|TestLinkDownUp|TestSTUNOverIPv6Routed|TestMatrixIPv6|TestSTUNOverIPv6NAT66|TestIPv6NAT66|TestRebindTCP|TestHostMove|TestNAT64DNS64|TestImpairShape|TestLabPublicHostImpair|TestDemoHappyEyeballs)$$

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

# Go micro-benchmarks (translate paths, table lookups, the impairment
# hook), then the data path against the kernel: kernel routing, kernel NAT
# and gonat with each TUN backend, with impairment, and over IPv6 beside
# the kernel's IPv6 forwarding, between the same namespaces (needs root;
# iperf3 and nftables are installed with apt-get if missing, after saying
# so). The table also goes to bench/results.md and bench/results.json.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 300ms ./header/ ./table/ ./nat/ ./forward/
	$(GO) run ./bench -gonat $(BIN) -out bench

# The scale benchmark: `gonat lab up` of a lab of N NATs (one host each)
# for each N: time to ready and to down, peak RSS, threads, a ping from
# the last host (docs/performance.md, "Scale"). SCALE=100 for a quick one.
SCALE ?= 100,500,1000
bench-scale: build
	$(GO) run ./bench -gonat $(BIN) -scale $(SCALE)

# Every fuzz target (scripts/fuzz.sh finds them) for FUZZTIME each, then
# a table of executions per target.
fuzz:
	GO=$(GO) scripts/fuzz.sh $(FUZZTIME)

# One gonat between namespaces with short and long UDP and TCP flows
# churning for SOAK (needs root): a line a minute with its RSS,
# goroutines, fds and live mappings, then whether they stayed flat.
soak: build
	$(GO) run ./bench -gonat $(BIN) -soak $(SOAK)

clean:
	rm -rf bin
