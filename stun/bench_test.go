package stun

import (
	"encoding/binary"
	"testing"

	pstun "github.com/pion/stun/v3"
)

// bindingRequest is an RFC 5780 filtering request: Binding with
// CHANGE-REQUEST change IP and port.
func bindingRequest() []byte {
	cr := make([]byte, 4)
	binary.BigEndian.PutUint32(cr, uint32(ChangeIP|ChangePort))
	return pstun.MustBuild(pstun.TransactionID, pstun.BindingRequest,
		pstun.RawAttribute{Type: attrChangeRequest, Value: cr}).Raw
}

// BenchmarkHandleBinding measures the server's per-request work: decode,
// validate, build the success response with its four address attributes.
func BenchmarkHandleBinding(b *testing.B) {
	h := testHandler()
	sc := newScratch()
	req := bindingRequest()
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		if _, ok := h.handle(sc, req, 0, fuzzSrc); !ok {
			b.Fatal("no reply")
		}
	}
}

// BenchmarkHandleClassic is the same for an RFC 3489 request.
func BenchmarkHandleClassic(b *testing.B) {
	h := testHandler()
	sc := newScratch()
	req, _ := classicRequest(ChangePort)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := h.handle(sc, req, 0, fuzzSrc); !ok {
			b.Fatal("no reply")
		}
	}
}

// The success path reuses the reader's buffers and allocates nothing.
func TestHandleBindingNoAllocs(t *testing.T) {
	h := testHandler()
	sc := newScratch()
	req := bindingRequest()
	classic, _ := classicRequest(0)
	for name, pkt := range map[string][]byte{"RFC 5780": req, "RFC 3489": classic} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, ok := h.handle(sc, pkt, 0, fuzzSrc); !ok {
				t.Fatal("no reply")
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per request, want 0", name, allocs)
		}
	}
}
