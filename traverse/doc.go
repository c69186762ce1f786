// Package traverse is NAT traversal by hole punching, small enough to read:
// a rendezvous (referral) server and a peer that learns its public endpoint,
// swaps candidates with its partner through the server, and punches a hole
// over UDP or by TCP simultaneous open. Between some NAT types this works
// and between others it cannot, which is what gonat's matrix shows.
//
// # Candidates
//
// A candidate is an address at which a peer might be reachable:
//
//   - host: the punching socket's own address (when bound to the wildcard,
//     the address routing picks towards the rendezvous server);
//   - srflx (server-reflexive): the mapping a server observed, the
//     rendezvous server always and a STUN server when PeerConfig.STUN is
//     set (UDP only);
//   - predicted: with PeerConfig.PredictPorts = N, the partner's srflx
//     ports +1..+N, for a symmetric NAT that assigns ports one after
//     another;
//   - prflx (peer-reflexive): an address a packet came from, or reached
//     us at, that was no announced candidate, which is what a symmetric
//     NAT's fresh mapping looks like; checked back over UDP.
//
// # Protocol
//
// Every message is one JSON object with "v":1 and a type "t": one UDP
// datagram, or one line on a TCP connection. Messages over 4096 bytes,
// other versions, unknown types and bad fields are malformed: dropped,
// counted, never answered. Names are 1-64 of A-Z a-z 0-9 . _ -.
//
// Peer to rendezvous server, over UDP, or over TCP in TCP mode (the
// server keeps a table per transport, since the mappings differ):
//
//	{"t":"register","name":N,"sid":S,"cands":[{"kind":"host","addr":"10.0.0.2:4000"},...]}
//	  -> {"t":"registered","name":N,"addr":<the source the server observed>}
//	  -> {"t":"error","name":N,"err":"full"}        table full (new names only)
//	{"t":"lookup","name":N,"peer":P[,"result":"received"|"nothing"]}
//	  -> {"t":"peer","name":N,"peer":P,"found":true,"sid":..,"cands":[..., the observed srflx][,"result":..]}
//	  -> {"t":"peer","name":N,"peer":P}             P not (or no longer) registered
//	  -> {"t":"error","name":N,"err":"not registered"}  N is not registered from this source
//	{"t":"bye","name":N,"sid":S}                   no reply
//
// The server records the source of a register as the peer's srflx
// candidate, adds it to the candidates it hands out, and answers a lookup
// only from the source the name registered from, so that replies bigger
// than their request are not aimed at a spoofed address. A registration
// expires a TTL (a minute) after its last register or lookup; the table is
// capped (1024); a new registration with another session ("sid") or
// source replaces the old one. A lookup's "result" records the sender's
// punch outcome about P's current session; a lookup by P returns it while
// P is still in that session (never to P's next run), so each side can tell
// "filtered" (neither side heard the other) from "timeout" (we heard
// nothing, but the partner heard us, or did not say). Bye marks the
// registration gone (no longer found) but keeps its result until expiry.
// Peers resend registers (every 250 ms) and lookups (every 200 ms while
// waiting for the partner, every second while punching, to pick up a
// partner that re-registered) until answered, so loss only costs time.
//
// UDP punching, peer to peer, all from the one socket whose mapping the
// servers observed:
//
//	{"t":"punch","from":A,"to":B,"sid":S,"addr":<where A sent it>}   a check, every 80 ms to every remote candidate
//	{"t":"ack",...,"check":<the punch's addr>}   the response to a punch, to its source
//	{"t":"hello",...,"text":"hello from A"}   every 100 ms once connected, until acknowledged
//	{"t":"hello-ack",...} reply to a hello, to its source
//
// By default a peer judges as an RFC 8445 (ICE) agent does. It is
// connected when an ack to one of its own punches arrives from the address
// that punch was sent to ("check" names it, standing in for the STUN
// transaction ID; §7.2.5.2.1). An ack from anywhere else is discarded (an
// address-and-port-dependent NAT on the other side sends it from a new
// mapping), and a run that got only such acks ends with Reason
// "asymmetric". The source of a punch that is no candidate is learnt as a
// peer-reflexive candidate and punched at once and from then on (§7.3.1.3,
// §7.3.1.4; at most 16). Punching goes on while the message is exchanged,
// since the partner may still need our punches to open our NAT for its
// own. Once connected a peer sends hello to the remote of its pair and
// answers hello from any source; the message went both ways when it has
// both received a hello and had its own acknowledged, after which it keeps
// answering for up to 500 ms so the partner can finish too.
//
// With PeerConfig.Permissive, a peer is connected when any of punch, ack,
// hello or hello-ack arrives from its partner (the names must match; the
// source address may be anything), and sends hello to that source.
//
// TCP: each peer listens on a port and, from that same port (SO_REUSEADDR
// and SO_REUSEPORT), connects to the rendezvous server (so the server sees
// the TCP mapping) and dials every remote candidate, again and again until
// connected or punching ends. On every connection, accepted or dialed,
// both sides write {"t":"hs","from":..,"to":..,"addr":<the other's address
// as seen>} and read the other's. Several connections can complete the
// handshake, so the peer whose name sorts first (controlling) picks the
// first one and sends hello on it; the other side takes the connection a
// hello arrives on, answers hello, and the controlling side sends
// hello-ack.
//
// # Timing
//
// RunPeer's Timeout bounds everything. Rendezvous and punching may use all
// but its last fifth (at least 300 ms, at most 2 s), which is kept for
// learning the partner's result. A run that never learns the partner's
// candidates ends with Reason "rendezvous: ...".
package traverse
