#!/usr/bin/env bash
# Creates (or with `down`, removes) a ready-made set of network namespaces
# for `gonat run`: two private hosts and one public namespace with server
# addresses. Idempotent: running it twice changes nothing.
#
#   sudo scripts/netns-setup.sh          # create
#   sudo scripts/netns-setup.sh down     # remove
#   PREFIX=mylab- scripts/netns-setup.sh # other names (default "gonat-")
#
# After it:
#   gonat run --inside ${PREFIX}a=10.0.0.2/24 --inside ${PREFIX}b=10.0.0.3/24 \
#             --outside ${PREFIX}wan --external 198.51.100.1 --preset full-cone
# Host A is namespace ${PREFIX}a (10.0.0.2 once gonat runs), host B is
# ${PREFIX}b (10.0.0.3); ${PREFIX}wan answers on 203.0.113.1 and 203.0.113.2
# (for an RFC 5780 STUN server: `ip netns exec ${PREFIX}wan gonat stun-server
# --primary 203.0.113.1 --alternate 203.0.113.2`).
set -euo pipefail
PREFIX=${PREFIX:-gonat-}
A=${PREFIX}a B=${PREFIX}b WAN=${PREFIX}wan
SERVERS=(203.0.113.1 203.0.113.2)

if [ "$(id -u)" -ne 0 ]; then
	echo "netns-setup.sh: needs root (it creates network namespaces)" >&2
	exit 1
fi
command -v ip >/dev/null || { echo "netns-setup.sh: needs iproute2 (apt-get install iproute2)" >&2; exit 1; }

# The file, not `ip netns list | grep -q`: with many namespaces, grep's
# early exit kills ip with SIGPIPE, and pipefail makes a present one absent.
have() { [ -e "/run/netns/$1" ]; }

case "${1:-up}" in
up)
	for n in "$A" "$B" "$WAN"; do
		have "$n" || ip netns add "$n"
		ip -n "$n" link set lo up
	done
	# Server addresses on loopback: the kernel answers for them, and no
	# module (dummy) is needed.
	for s in "${SERVERS[@]}"; do
		ip -n "$WAN" addr replace "$s/32" dev lo
	done
	echo "namespaces ready: $A (host A), $B (host B), $WAN (public: ${SERVERS[*]})"
	echo "next: gonat run --inside $A=10.0.0.2/24 --inside $B=10.0.0.3/24 --outside $WAN --external 198.51.100.1"
	;;
down)
	for n in "$A" "$B" "$WAN"; do
		if have "$n"; then ip netns del "$n"; fi
	done
	echo "namespaces removed: $A $B $WAN"
	;;
*)
	echo "usage: $0 [up|down]" >&2
	exit 2
	;;
esac
