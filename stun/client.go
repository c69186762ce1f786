package stun

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	pstun "github.com/pion/stun/v3"
)

// Retransmission defaults of RFC 8489 §6.2.1.
const (
	DefaultRTO     = 500 * time.Millisecond // initial retransmission timeout
	DefaultRetries = 7                      // Rc: requests sent in all
	finalWaitRTOs  = 16                     // Rm: the last request is given Rm*RTO
)

// ErrTimeout is returned (wrapped) when no response arrived after every
// retransmission: the server is unreachable or the NAT filtered the answer.
var ErrTimeout = errors.New("stun: no response")

// BindingResponse is what a Binding success response said (RFC 8489 §14,
// RFC 5780 §7). A zero field was absent from the response.
type BindingResponse struct {
	// Mapped is XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS when the server only
	// sent that: the client's address as the server saw it.
	Mapped netip.AddrPort
	// MappedAddress is the plain MAPPED-ADDRESS. It differs from Mapped
	// when something on the path (an ALG) rewrote addresses it could read
	// (RFC 5780 §3.6).
	MappedAddress netip.AddrPort
	// ResponseOrigin is where the server says it sent the response from
	// (RESPONSE-ORIGIN, RFC 5780 §7.3).
	ResponseOrigin netip.AddrPort
	// OtherAddress is the server's alternate address and port
	// (OTHER-ADDRESS, RFC 5780 §7.4).
	OtherAddress netip.AddrPort
	// From is the source of the datagram that carried the response.
	From netip.AddrPort
}

// Binding runs one Binding transaction (RFC 8489 §6.2.1) from conn to
// server, asking the server to answer from another address and/or port
// when change is not zero (RFC 5780 §7.2). It sends Rc=retries requests
// (DefaultRetries when retries <= 0) at 0, rto, 3*rto, 7*rto, ... and then
// waits 16*rto more for the last one (Rm, RFC 8489 §6.2.1), so at most
// (2^(Rc-1)-1+16)*rto in all: 39.5 s at the defaults, which a caller that
// expects silence bounds with a smaller rto, fewer retries or ctx. A rto <= 0
// means DefaultRTO.
//
// Binding must be the only reader of conn while it runs; datagrams that are
// not the awaited response are discarded. A missing response gives an error
// for which errors.Is(err, ErrTimeout) holds; an error response gives an
// error naming its code.
func Binding(ctx context.Context, conn net.PacketConn, server netip.AddrPort, change ChangeFlags, rto time.Duration, retries int) (BindingResponse, error) {
	t := newTxn(change)
	if err := transact(ctx, conn, []*txn{t}, server, rto, retries); err != nil {
		return BindingResponse{}, err
	}
	if t.err != nil {
		return BindingResponse{}, t.err
	}
	if !t.done {
		return BindingResponse{}, fmt.Errorf("stun: binding request to %v (change %v): %w", server, change, ErrTimeout)
	}
	return t.resp, nil
}

// txn is one request among those transact runs on one socket.
type txn struct {
	change ChangeFlags
	req    []byte
	key    [16]byte
	done   bool
	resp   BindingResponse
	err    error
}

// newTxn encodes a Binding request with a fresh random transaction ID.
func newTxn(change ChangeFlags) *txn { return newRequest(change, 0) }

// newRequest encodes a Binding request with a fresh random transaction ID,
// a CHANGE-REQUEST when change is not zero and a RESPONSE-PORT (RFC 5780
// §7.5: the port, then two bytes of padding) when responsePort is not zero.
func newRequest(change ChangeFlags, responsePort uint16) *txn {
	m := pstun.New()
	m.Type = pstun.BindingRequest
	m.TransactionID = pstun.NewTransactionID()
	m.WriteHeader()
	if change != 0 {
		var v [4]byte
		binary.BigEndian.PutUint32(v[:], uint32(change))
		m.Add(attrChangeRequest, v[:])
	}
	if responsePort != 0 {
		m.Add(attrResponsePort, []byte{byte(responsePort >> 8), byte(responsePort), 0, 0})
	}
	return &txn{change: change, req: m.Raw, key: xorKey(m.Raw)}
}

// match decodes b as the success or error response to t, if it is one.
func (t *txn) match(m *pstun.Message, b []byte, from netip.AddrPort) bool {
	if len(b) < headerSize || [16]byte(b[4:headerSize]) != t.key {
		return false
	}
	m.Raw = append(m.Raw[:0], b...)
	if m.Decode() != nil || m.Type.Method != pstun.MethodBinding {
		return false
	}
	switch m.Type.Class {
	case pstun.ClassSuccessResponse:
		r := BindingResponse{
			Mapped:         getAddr(m, attrXORMappedAddress, &t.key),
			MappedAddress:  getAddr(m, attrMappedAddress, nil),
			ResponseOrigin: getAddr(m, attrResponseOrigin, nil),
			OtherAddress:   getAddr(m, attrOtherAddress, nil),
			From:           from,
		}
		if !r.Mapped.IsValid() {
			r.Mapped = r.MappedAddress
		}
		t.resp = r
	case pstun.ClassErrorResponse:
		var ec pstun.ErrorCodeAttribute
		if err := ec.GetFrom(m); err != nil {
			t.err = fmt.Errorf("stun: error response without a valid ERROR-CODE from %v", from)
		} else {
			t.err = fmt.Errorf("stun: error response %d %s from %v", int(ec.Code), ec.Reason, from)
		}
	default:
		return false
	}
	t.done = true
	return true
}

// transact sends every request in ts to dst on the RFC 8489 §6.2.1 schedule
// and collects responses until all are answered or the schedule ends. It
// returns an error only for socket failures and ctx; unanswered txns stay
// !done.
func transact(ctx context.Context, conn net.PacketConn, ts []*txn, dst netip.AddrPort, rto time.Duration, retries int) error {
	if rto <= 0 {
		rto = DefaultRTO
	}
	if retries <= 0 {
		retries = DefaultRetries
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		stop()
		_ = conn.SetReadDeadline(time.Time{})
	}()
	var m pstun.Message
	buf := make([]byte, 2048)
	pending := len(ts)
	interval := rto
	for sent := 0; pending > 0; sent++ {
		wait := interval
		if sent == retries-1 {
			wait = finalWaitRTOs * rto
		} else if sent >= retries {
			break
		}
		for _, t := range ts {
			if !t.done {
				if err := writeTo(conn, t.req, dst); err != nil {
					return fmt.Errorf("stun: send to %v: %w", dst, err)
				}
			}
		}
		interval *= 2
		deadline := time.Now().Add(wait)
		if err := conn.SetReadDeadline(deadline); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err // cancelled before the deadline above was set
		}
		for pending > 0 {
			n, from, err := readFrom(conn, buf)
			if err != nil {
				if cerr := ctx.Err(); cerr != nil {
					return cerr
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				return fmt.Errorf("stun: read: %w", err)
			}
			for _, t := range ts {
				if !t.done && t.match(&m, buf[:n], from) {
					pending--
					break
				}
			}
		}
	}
	return nil
}

// readFrom reads one datagram, without allocating on a *net.UDPConn.
func readFrom(c net.PacketConn, b []byte) (int, netip.AddrPort, error) {
	if u, ok := c.(*net.UDPConn); ok {
		n, ap, err := u.ReadFromUDPAddrPort(b)
		return n, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), err
	}
	n, a, err := c.ReadFrom(b)
	ap := addrPortOf(a)
	return n, netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), err
}
