package nat

import "github.com/gonat/gonat/table"

// Verdict is what the engine did with one packet. Every drop has its own
// reason, counted separately, so a user can always tell why a packet did
// not pass.
type Verdict uint8

const (
	Forward            Verdict = iota // translated (or routed) and sent on
	DropMalformed                     // not a well-formed IPv4 or IPv6 packet
	DropNotIPv4                       // neither IPv4 nor IPv6 (IPv6 goes by the ipv6 mode)
	DropNoMapping                     // inbound, no live mapping for the destination
	DropFiltered                      // inbound, a mapping exists but its filter refuses the source
	DropUnsolicitedSYN                // inbound TCP SYN with no mapping (RFC 5382 REQ-4: silent)
	DropPoolExhausted                 // no free external port; ICMP 3/13 sent back
	DropTTLExceeded                   // TTL ran out here; ICMP Time Exceeded sent back
	DropBadChecksum                   // bad IPv4 header checksum (RFC 1812 5.2.2), an ICMP error's bad ICMP or embedded IP checksum (RFC 5508 REQ-3), or a TCP SYN, FIN or RST from outside with a bad checksum
	DropNoRoute                       // destination is neither outside nor a known inside host
	DropHairpinOff                    // inside host sent to an external address and hairpinning is off
	DropUnsupported                   // protocol or ICMP type gonat does not translate
	DropFragment                      // non-first fragment with no state from its first fragment
	DropLocal                         // from inside, addressed to the NAT's own gateway address
	HeldFragment                      // a later fragment before its first: held until the first passes (REQ-14)

	// Limits of table.Config refused a new mapping or session; ICMP 3/13
	// sent back (rate-limited).
	DropLimitMappingsPerHost
	DropLimitSessionsPerMapping
	DropLimitMappings
	DropLimitSessions
	DropSpoofed        // from inside, with a source address that is not on its port (BCP 38)
	DropMartian        // a source from outside, or a destination, no router forwards
	DropTCPOutOfWindow // TCP RST or FIN from outside outside its session's window (RFC 5961)

	// IPv6, by the NAT's ipv6 mode (ipv6.go).
	DropIPv6None      // mode none: refused, ICMPv6 1/1 to an inside sender
	DropIPv6Blackhole // mode blackhole: lost, answered by nothing
	DropIPv6Reject    // mode reject: refused, ICMPv6 1/0 to an inside sender
	DropIPv6Filtered  // mode routed: from outside, no live session of the firewall admits it

	DropFirewall // refused by the firewall setting's rules

	DropIPv6Aliases // mode nat66: the alias map of IPv6 addresses is full
	// Path MTU (pmtu.go).
	DropTooBig              // too big for the next link and may not be fragmented; ICMP 3/4 or Packet Too Big sent back
	DropPMTUBlackhole       // too big for the next link, dropped silently (setting pmtu-blackhole)
	DropNAT64Untranslatable // mode nat64: a packet gonat does not translate between IPv6 and IPv4
	numVerdicts
)

var verdictNames = [numVerdicts]string{
	Forward:            "forward",
	DropMalformed:      "malformed",
	DropNotIPv4:        "not-ipv4",
	DropNoMapping:      "no-mapping",
	DropFiltered:       "filtered",
	DropUnsolicitedSYN: "unsolicited-syn",
	DropPoolExhausted:  "pool-exhausted",
	DropTTLExceeded:    "ttl-exceeded",
	DropBadChecksum:    "bad-checksum",
	DropNoRoute:        "no-route",
	DropHairpinOff:     "hairpin-off",
	DropUnsupported:    "unsupported",
	DropFragment:       "fragment-no-state",
	DropLocal:          "local",
	HeldFragment:       "fragment-held",

	DropLimitMappingsPerHost:    "limit-mappings-per-host",
	DropLimitSessionsPerMapping: "limit-sessions-per-mapping",
	DropLimitMappings:           "limit-mappings",
	DropLimitSessions:           "limit-sessions",
	DropSpoofed:                 "spoofed",
	DropMartian:                 "martian",
	DropTCPOutOfWindow:          "tcp-out-of-window",
	DropIPv6None:                "ipv6-none",
	DropIPv6Blackhole:           "ipv6-blackhole",
	DropIPv6Reject:              "ipv6-reject",
	DropIPv6Filtered:            "ipv6-filtered",
	DropIPv6Aliases:             "ipv6-aliases-full",
	DropFirewall:                "firewall",
	DropTooBig:                  "too-big",
	DropPMTUBlackhole:           "pmtu-blackhole",
	DropNAT64Untranslatable:     "nat64-untranslatable",
}

// verdictMeanings say in a line what each verdict means, for people:
// the web view's legend is made from them.
var verdictMeanings = [numVerdicts]string{
	Forward:            "translated (or routed between inside hosts) and sent on",
	DropMalformed:      "not a well-formed IPv4 or IPv6 packet",
	DropNotIPv4:        "neither IPv4 nor IPv6",
	DropNoMapping:      "came from outside to an external endpoint no live mapping holds",
	DropFiltered:       "came from outside to a live mapping whose filter does not admit the sender: the inside host has not sent to that address (or address and port)",
	DropUnsolicitedSYN: "a TCP SYN from outside with no mapping, dropped silently (RFC 5382 REQ-4)",
	DropPoolExhausted:  "no external port left for a new mapping; an ICMP error (3/13) goes back to the sender, rate-limited",
	DropTTLExceeded:    "the TTL ran out at the NAT; an ICMP Time Exceeded goes back, rate-limited, so traceroute shows the NAT",
	DropBadChecksum:    "a wrong IPv4 header checksum (RFC 1812 §5.2.2), an ICMP error whose ICMP or embedded IP checksum is wrong (RFC 5508 REQ-3), or a TCP SYN, FIN or RST from outside whose TCP checksum is wrong: the host would ignore it, and the NAT's session must not change for it either",
	DropNoRoute:        "the destination is neither outside nor an inside host the NAT knows",
	DropHairpinOff:     "an inside host sent to one of the NAT's external endpoints, and hairpinning is off",
	DropUnsupported:    "a protocol or ICMP type gonat does not translate",
	DropFragment:       "a later fragment of a datagram whose first fragment the NAT has not seen",
	DropLocal:          "an inside host sent to the NAT's own gateway address: the NAT answers nothing addressed to itself",
	HeldFragment:       "not a drop: a later fragment that came before its first, held until the first passes",

	DropLimitMappingsPerHost:    "the inside host holds as many mappings as limit-mappings-per-host allows: no new one until one lapses; an ICMP error (3/13) goes back, rate-limited",
	DropLimitSessionsPerMapping: "the mapping holds as many sessions (remote endpoints) as limit-sessions-per-mapping allows: no new one until one lapses; an ICMP error (3/13) goes back, rate-limited",
	DropLimitMappings:           "the NAT holds as many mappings as limit-mappings allows: no new one until one lapses; an ICMP error (3/13) goes back, rate-limited",
	DropLimitSessions:           "the NAT holds as many sessions as limit-sessions allows: no new one until one lapses; an ICMP error (3/13) goes back, rate-limited",
	DropSpoofed:                 "came from inside with a source address that is not on its port: another port's host, or outside the port's networks (BCP 38)",
	DropMartian:                 "an address no router forwards: from outside a source that is this network, loopback, link-local, multicast, class E, broadcast, the NAT's own or an inside address; or a destination that is this network, loopback, link-local, multicast, class E or broadcast",
	DropTCPOutOfWindow:          "a TCP RST or FIN from outside whose sequence numbers lie outside its connection's window, as a forged one's would (RFC 5961): dropped, the session left as it was",
	DropIPv6None:                "IPv6 with ipv6 mode none: from inside refused with an ICMPv6 destination unreachable, administratively prohibited (rate-limited); from outside dropped",
	DropIPv6Blackhole:           "IPv6 with ipv6 mode blackhole: lost without a word, either way, as on a network whose IPv6 is silently broken",
	DropIPv6Reject:              "IPv6 with ipv6 mode reject: from inside refused at once with an ICMPv6 destination unreachable, no route (rate-limited), as a router without an IPv6 route answers; from outside dropped",
	DropIPv6Filtered:            "IPv6 from outside, ipv6 mode routed: no live session of the firewall admits it under the filtering behaviour (RFC 6092), or an ICMPv6 error quoting no live session",
	DropIPv6Aliases:             "IPv6 with ipv6 mode nat66: a new mapping or session needed an alias for an IPv6 address and the alias map was full (its limit is limit-mappings plus limit-sessions); from inside an ICMPv6 destination unreachable, administratively prohibited, goes back (rate-limited)",
	DropNAT64Untranslatable:     "with ipv6 mode nat64, a packet gonat does not translate between IPv6 and IPv4: a fragment, a super-packet from a device with offloads, UDP from IPv6 without a checksum, an ICMP type RFC 7915 drops, or an ICMP error about no packet of an inside host",
	DropFirewall:                "refused by a rule of the firewall setting (a profile such as block-udp or web-only, or a rule list): going out before translation, coming in after its mapping was found",
	DropTooBig:                  "larger than the MTU of the link it would leave by, with DF set (or IPv6, which routers never fragment): an ICMP fragmentation needed (3/4) or ICMPv6 Packet Too Big with that MTU goes back to the sender, rate-limited, for path MTU discovery",
	DropPMTUBlackhole:           "larger than the MTU of the link it would leave by, with DF set or IPv6, and dropped without a word (setting pmtu-blackhole): the path MTU black hole of RFC 2923",
}

// Meaning says in a line what the verdict means.
func (v Verdict) Meaning() string {
	if v < numVerdicts {
		return verdictMeanings[v]
	}
	return ""
}

func (v Verdict) String() string {
	if v < numVerdicts {
		return verdictNames[v]
	}
	return "unknown"
}

// Verdicts lists every verdict, for counters and docs.
func Verdicts() []Verdict {
	vs := make([]Verdict, numVerdicts)
	for i := range vs {
		vs[i] = Verdict(i)
	}
	return vs
}

// outboundError is the verdict for an error of table.Outbound: a limit,
// or no free port.
func outboundError(err error) Verdict {
	switch err {
	case table.ErrLimitMappingsPerHost:
		return DropLimitMappingsPerHost
	case table.ErrLimitSessionsPerMapping:
		return DropLimitSessionsPerMapping
	case table.ErrLimitMappings:
		return DropLimitMappings
	case table.ErrLimitSessions:
		return DropLimitSessions
	}
	return DropPoolExhausted
}

func tableVerdict(v table.Verdict) Verdict {
	switch v {
	case table.Accept:
		return Forward
	case table.DropFiltered:
		return DropFiltered
	case table.DropUnsolicitedSYN:
		return DropUnsolicitedSYN
	case table.DropLimitSessionsPerMapping:
		return DropLimitSessionsPerMapping
	case table.DropLimitSessions:
		return DropLimitSessions
	case table.DropOutOfWindow:
		return DropTCPOutOfWindow
	default:
		return DropNoMapping
	}
}
