package table

import (
	"fmt"
	"strconv"
	"strings"
)

// Protocol is an IP protocol number. The table keeps separate state for each
// protocol (RFC 5382 REQ-1: a UDP mapping never admits TCP, and back).
type Protocol uint8

// The protocols the table translates.
const (
	ICMP Protocol = 1
	TCP  Protocol = 6
	UDP  Protocol = 17
)

// String returns "icmp", "tcp", "udp", or "proto(N)" for any other number.
func (p Protocol) String() string {
	switch p {
	case ICMP:
		return "icmp"
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return "proto(" + strconv.Itoa(int(p)) + ")"
}

// index maps a supported protocol to 0..2 (the pools array), or -1.
func (p Protocol) index() int {
	switch p {
	case ICMP:
		return 0
	case TCP:
		return 1
	case UDP:
		return 2
	}
	return -1
}

// Behavior is RFC 4787's vocabulary for how much of the remote endpoint a NAT
// looks at. It describes both the mapping behaviour (RFC 4787 §4.1: which
// packets share one external endpoint) and the filtering behaviour (§5: which
// remote endpoints may send in through a mapping).
type Behavior uint8

// The three behaviours of RFC 4787 §4.1 and §5.
const (
	// EndpointIndependent ignores the remote endpoint: EIM, EIF.
	EndpointIndependent Behavior = iota
	// AddressDependent looks at the remote address only: ADM, ADF.
	AddressDependent
	// AddressAndPortDependent looks at the remote address and port: APDM, APDF.
	AddressAndPortDependent
)

var behaviorNames = [...]string{
	EndpointIndependent:     "endpoint-independent",
	AddressDependent:        "address-dependent",
	AddressAndPortDependent: "address-and-port-dependent",
}

// ParseBehavior parses a behaviour by its long name ("endpoint-independent",
// "address-dependent", "address-and-port-dependent") or a short form ("eim",
// "adm", "apdm", "eif", "adf", "apdf"), ignoring case.
func ParseBehavior(s string) (Behavior, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "endpoint-independent", "eim", "eif":
		return EndpointIndependent, nil
	case "address-dependent", "adm", "adf":
		return AddressDependent, nil
	case "address-and-port-dependent", "apdm", "apdf":
		return AddressAndPortDependent, nil
	}
	return 0, fmt.Errorf("behavior %q: want one of endpoint-independent, address-dependent, address-and-port-dependent (or eim, adm, apdm, eif, adf, apdf)", s)
}

// String returns the long name, e.g. "address-and-port-dependent".
func (b Behavior) String() string {
	if int(b) < len(behaviorNames) {
		return behaviorNames[b]
	}
	return "behavior(" + strconv.Itoa(int(b)) + ")"
}

// Short returns the RFC 4787 abbreviation: "EIM", "ADM", "APDM" for a
// mapping behaviour, or "EIF", "ADF", "APDF" when filtering is true.
func (b Behavior) Short(filtering bool) string {
	var s string
	switch b {
	case EndpointIndependent:
		s = "EI"
	case AddressDependent:
		s = "AD"
	case AddressAndPortDependent:
		s = "APD"
	default:
		return b.String()
	}
	if filtering {
		return s + "F"
	}
	return s + "M"
}

// PortAssignment is how a new mapping's external port is chosen
// (RFC 4787 §4.2.1, RFC 7857 §9).
type PortAssignment uint8

// The port assignment modes.
const (
	// Preserve keeps the internal port when it is free, else picks a random
	// free port, as Linux does.
	Preserve PortAssignment = iota
	// Sequential takes the next free port after the last one assigned.
	Sequential
	// Random takes a uniformly random free port.
	Random
)

var portAssignmentNames = [...]string{Preserve: "preserve", Sequential: "sequential", Random: "random"}

// ParsePortAssignment parses "preserve", "sequential" or "random", ignoring case.
func ParsePortAssignment(s string) (PortAssignment, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	for i, n := range portAssignmentNames {
		if l == n {
			return PortAssignment(i), nil
		}
	}
	return 0, fmt.Errorf("port assignment %q: want one of preserve, sequential, random", s)
}

// String returns "preserve", "sequential" or "random".
func (p PortAssignment) String() string {
	if int(p) < len(portAssignmentNames) {
		return portAssignmentNames[p]
	}
	return "port-assignment(" + strconv.Itoa(int(p)) + ")"
}

// Pooling is how a NAT with several external addresses picks one for a new
// mapping (RFC 4787 §4.1 REQ-2).
type Pooling uint8

// The pooling behaviours.
const (
	// Paired gives all mappings of one internal address the same external
	// address (RFC 4787 REQ-2, RFC 6888 REQ-2).
	Paired Pooling = iota
	// Arbitrary lets each new mapping take any external address.
	Arbitrary
)

var poolingNames = [...]string{Paired: "paired", Arbitrary: "arbitrary"}

// ParsePooling parses "paired" or "arbitrary", ignoring case.
func ParsePooling(s string) (Pooling, error) {
	l := strings.ToLower(strings.TrimSpace(s))
	for i, n := range poolingNames {
		if l == n {
			return Pooling(i), nil
		}
	}
	return 0, fmt.Errorf("pooling %q: want one of paired, arbitrary", s)
}

// String returns "paired" or "arbitrary".
func (p Pooling) String() string {
	if int(p) < len(poolingNames) {
		return poolingNames[p]
	}
	return "pooling(" + strconv.Itoa(int(p)) + ")"
}

// Verdict is the table's decision on an inbound packet.
type Verdict uint8

// The verdicts; every drop has its own reason so the engine can count them.
const (
	// Accept: translate and forward.
	Accept Verdict = iota
	// DropNoMapping: no live mapping holds the external endpoint.
	DropNoMapping
	// DropFiltered: a mapping exists but its filter rejects the remote
	// endpoint (RFC 4787 §5).
	DropFiltered
	// DropUnsolicitedSYN: a TCP SYN with no mapping. RFC 5382 REQ-4 asks for
	// a silent drop (no RST, no ICMP error for at least 6 s).
	DropUnsolicitedSYN
	// DropLimitSessionsPerMapping: a TCP SYN admitted by the filter would
	// add a session to a mapping at Config.LimitSessionsPerMapping.
	DropLimitSessionsPerMapping
	// DropLimitSessions: a TCP SYN admitted by the filter would add a
	// session to a table at Config.LimitSessions.
	DropLimitSessions
	// DropOutOfWindow: a TCP RST or FIN whose sequence numbers lie
	// outside its session's window (RFC 5961 §3, §4): believed, anyone
	// on the path could end the connection.
	DropOutOfWindow
)

var verdictNames = [...]string{
	Accept:                      "accept",
	DropNoMapping:               "no-mapping",
	DropFiltered:                "filtered",
	DropUnsolicitedSYN:          "unsolicited-syn",
	DropLimitSessionsPerMapping: "limit-sessions-per-mapping",
	DropLimitSessions:           "limit-sessions",
	DropOutOfWindow:             "tcp-out-of-window",
}

// String returns the verdict's name: "accept", "no-mapping", "filtered",
// "unsolicited-syn", "limit-sessions-per-mapping", "limit-sessions" or
// "tcp-out-of-window".
func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "verdict(" + strconv.Itoa(int(v)) + ")"
}

// TCP header flag bits, as passed in the tcpFlags arguments (byte 13 of the
// TCP header).
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagPSH uint8 = 0x08
	FlagACK uint8 = 0x10
)

// isConnRequest reports a SYN without ACK: the first packet of a connection
// (a SYN-ACK answers one).
func isConnRequest(flags uint8) bool {
	return flags&(FlagSYN|FlagACK) == FlagSYN
}
