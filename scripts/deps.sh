#!/usr/bin/env bash
# Installs what gonat's demo and tests use, only when missing, and says so.
#   scripts/deps.sh            # runtime tools (iproute2)
#   scripts/deps.sh test       # + test tools: ping, tracepath, the Debian STUN client, coturn's (its RFC 5780 client speaks IPv6), tshark, curl (Happy Eyeballs judge), iperf3 (impairment rate), chromium, nftables, zsh and fish (completion tests), staticcheck
set -euo pipefail
want=(ip:iproute2)
if [ "${1:-}" = test ]; then
	want+=(ping:iputils-ping tracepath:iputils-tracepath stun:stun-client turnutils_natdiscovery:coturn tshark:tshark curl:curl iperf3:iperf3 chromium:chromium nft:nftables zsh:zsh fish:fish)
fi
missing=()
for w in "${want[@]}"; do
	cmd=${w%%:*} pkg=${w#*:}
	command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing Debian packages: ${missing[*]}" >&2
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: need root to apt-get install ${missing[*]}; run as root or install them yourself" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null || { echo "deps: apt-get update failed" >&2; exit 1; }
	apt-get install -y -qq "${missing[@]}" >/dev/null || { echo "deps: apt-get install ${missing[*]} failed" >&2; exit 1; }
fi
if [ "${1:-}" = test ]; then
	STATICCHECK=$(go env GOPATH)/bin/staticcheck
	if [ ! -x "$STATICCHECK" ]; then
		echo "deps: installing staticcheck (Go module)" >&2
		go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	fi
fi
go mod download
