// Package stun is gonat's NAT behaviour laboratory kit: an RFC 5780 STUN
// server that also answers RFC 3489 ("classic STUN") clients, and a probe
// that runs the RFC 5780 §4 behaviour discovery tests against such a server.
//
// The server (NewServer) listens on four UDP sockets, two addresses of one
// family (IPv4 or IPv6) times two ports (RFC 5780 §6), honours
// CHANGE-REQUEST (RFC 5780 §7.2, RFC 3489 §11.2.4), RESPONSE-PORT (§7.5) and
// PADDING (§7.6), and reports MAPPED-ADDRESS, XOR-MAPPED-ADDRESS,
// RESPONSE-ORIGIN and OTHER-ADDRESS (RFC 8489 §14.1-14.2, RFC 5780
// §7.3-7.4), plus SOURCE-ADDRESS and CHANGED-ADDRESS for RFC 3489 clients
// (RFC 3489 §11.2.3, §11.2.5).
//
// The probe (Probe) classifies the path between a local socket and the
// server in RFC 4787 terms (mapping and filtering behaviour, hairpinning,
// port assignment), measures on request how long an idle UDP mapping lives
// (RFC 5780 §4.6), and gives the matching RFC 3489 §5 name. Binding is the single
// request/response transaction underneath, with RFC 8489 §6.2.1
// retransmissions; tests of the NAT use it directly.
//
// STUN messages are decoded and encoded with github.com/pion/stun/v3; this
// package adds what pion leaves out: RFC 3489 messages without the magic
// cookie, and address attributes straight from and to netip values.
package stun
