package traverse

import (
	"encoding/json"
	"errors"
	"net"
	"net/netip"
)

// Protocol limits. Anything beyond them is dropped as malformed.
const (
	protoVersion  = 1
	maxMessage    = 4096 // bytes per datagram or line
	maxNameLen    = 64
	maxCandidates = 16
	maxSidLen     = 32
	maxTextLen    = 256
)

// Message types (the "t" field). See doc.go for who sends which.
const (
	tRegister   = "register"
	tRegistered = "registered"
	tLookup     = "lookup"
	tPeer       = "peer"
	tBye        = "bye"
	tError      = "error"
	tPunch      = "punch"
	tAck        = "ack"
	tHello      = "hello"
	tHelloAck   = "hello-ack"
	tHandshake  = "hs"
)

// Candidate kinds.
const (
	KindHost      = "host"      // the socket's own address
	KindSrflx     = "srflx"     // server-reflexive: the mapping a server observed
	KindPredicted = "predicted" // a guessed mapping: a srflx port plus 1..PredictPorts
	KindPrflx     = "prflx"     // peer-reflexive: an address the peer's packets came from (or that the peer reached us at) that was no candidate
)

// Punch outcomes a peer reports to the rendezvous server (the "result" field
// of a lookup), so that its partner can tell "filtered" from "timeout".
const (
	resultReceived = "received" // a packet (UDP) or a connection (TCP) from the peer arrived
	resultNothing  = "nothing"  // punching ended and nothing from the peer arrived
)

// Error strings the server sends in an "error" message.
const (
	errFull          = "full"
	errNotRegistered = "not registered"
)

// Candidate is one transport address at which a peer might be reachable.
type Candidate struct {
	Kind string         `json:"kind"` // KindHost, KindSrflx, KindPredicted, KindPrflx
	Addr netip.AddrPort `json:"addr"`
}

func (c Candidate) String() string { return c.Kind + " " + c.Addr.String() }

// message is every message of the protocol, on the wire as one JSON object
// (one UDP datagram, or one line on a TCP connection). Unknown fields are
// ignored; a missing or different "v" makes the message malformed.
type message struct {
	V      int            `json:"v"`
	T      string         `json:"t"`
	Name   string         `json:"name,omitempty"`   // rendezvous: the sender's registered name
	Peer   string         `json:"peer,omitempty"`   // rendezvous: the partner's name
	From   string         `json:"from,omitempty"`   // peer to peer: sender
	To     string         `json:"to,omitempty"`     // peer to peer: recipient
	Sid    string         `json:"sid,omitempty"`    // session: random per RunPeer
	Cands  []Candidate    `json:"cands,omitempty"`  // register: declared; peer: the partner's
	Addr   netip.AddrPort `json:"addr,omitzero"`    // registered: observed source; punch/ack/hello/hs: where the sender sent it
	Check  netip.AddrPort `json:"check,omitzero"`   // ack: where the punch it answers was sent (its "addr")
	Found  bool           `json:"found,omitempty"`  // peer: the partner is registered
	Result string         `json:"result,omitempty"` // lookup: own punch outcome; peer: the partner's
	Err    string         `json:"err,omitempty"`    // error
	Text   string         `json:"text,omitempty"`   // hello
}

var errMalformed = errors.New("traverse: malformed message")

// decode parses and sanity-checks one message. It checks what every message
// must satisfy; the handlers check what their type needs.
func decode(b []byte) (message, error) {
	var m message
	if len(b) == 0 || len(b) > maxMessage || b[0] != '{' {
		return m, errMalformed
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, errMalformed
	}
	if m.V != protoVersion || m.T == "" || len(m.T) > 16 ||
		len(m.Name) > maxNameLen || len(m.Peer) > maxNameLen ||
		len(m.From) > maxNameLen || len(m.To) > maxNameLen ||
		len(m.Sid) > maxSidLen || len(m.Text) > maxTextLen ||
		len(m.Err) > maxTextLen || len(m.Result) > 16 ||
		len(m.Cands) > maxCandidates {
		return m, errMalformed
	}
	for _, c := range m.Cands {
		if !validCandidate(c) {
			return m, errMalformed
		}
	}
	return m, nil
}

// encode marshals m with the protocol version set.
func encode(m message) []byte {
	m.V = protoVersion
	b, err := json.Marshal(m)
	if err != nil {
		// Only strings, bools, ints and netip values: cannot fail.
		panic("traverse: encode: " + err.Error())
	}
	return b
}

func validCandidate(c Candidate) bool {
	switch c.Kind {
	case KindHost, KindSrflx, KindPredicted:
	default:
		return false
	}
	return c.Addr.IsValid() && c.Addr.Port() != 0 && !c.Addr.Addr().IsUnspecified() && c.Addr.Addr().Zone() == ""
}

// ValidName reports whether s can be registered: 1 to 64 bytes of ASCII
// letters, digits, '.', '_' and '-'.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// unmap returns ap with a 4-in-6 address turned into plain IPv4.
func unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// addrPortOf converts a net.Addr (UDP or TCP) to a netip value; zero if it
// is neither.
func addrPortOf(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return unmap(a.AddrPort())
	case *net.TCPAddr:
		return unmap(a.AddrPort())
	case nil:
		return netip.AddrPort{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.AddrPort{}
	}
	return unmap(ap)
}

// appendCandidate appends c unless its address is already in list.
func appendCandidate(list []Candidate, c Candidate) []Candidate {
	for _, o := range list {
		if o.Addr == c.Addr {
			return list
		}
	}
	return append(list, c)
}

// matchCandidate returns the candidate of list with address a, or a
// peer-reflexive candidate for a when there is none.
func matchCandidate(list []Candidate, a netip.AddrPort) Candidate {
	for _, c := range list {
		if c.Addr == a {
			return c
		}
	}
	return Candidate{Kind: KindPrflx, Addr: a}
}
