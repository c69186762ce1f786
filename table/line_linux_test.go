package table

import (
	"runtime/debug"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestPacketTouchesFirstLine runs a mapping's steady traffic (both ways,
// each protocol, counters and TCP windows included) with its second cache
// line in a page that cannot be read or written (a TCP mapping's windows
// are in the line before its first). TestMappingLayout checks where the
// fields are; this checks what the code touches: a read or write of the
// second line on a packet costs a miss per packet at a million mappings,
// and here it faults.
func TestPacketTouchesFirstLine(t *testing.T) {
	page := syscall.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, 2*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	guard := mem[page:]
	// The copy's first line ends where the guard page starts.
	line2 := uintptr(unsafe.Pointer(&mem[page]))

	for _, proto := range []Protocol{UDP, TCP, ICMP} {
		t.Run(proto.String(), func(t *testing.T) {
			tab := newTable(t, nil)
			in, rem := ep(hostA, 5000), ep(srvA1, portP1)
			now := t0
			m, _, err := tab.Outbound(proto, in, rem, FlagSYN, now)
			if err != nil {
				t.Fatal(err)
			}
			if _, v := tab.Inbound(proto, m.External(), rem, FlagSYN|FlagACK, now); v != Accept {
				t.Fatalf("first reply: %v", v)
			}
			if err := syscall.Mprotect(guard, syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
				t.Fatal(err)
			}
			c := (*Mapping)(unsafe.Pointer(&mem[page-64]))
			*c = *m
			if proto == TCP {
				// The windows' line, just before (tcpMapping).
				*c.win(0) = *m.win(0)
			}
			swapIndexed(t, tab, m, c)
			defer swapIndexed(t, tab, c, m)
			if err := syscall.Mprotect(guard, syscall.PROT_NONE); err != nil {
				t.Fatal(err)
			}
			defer syscall.Mprotect(guard, syscall.PROT_READ|syscall.PROT_WRITE)

			const packets = 100
			func() {
				defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
				defer func() {
					if r := recover(); r != nil {
						if f, ok := r.(interface{ Addr() uintptr }); ok && f.Addr() >= line2 {
							t.Fatalf("a packet touched byte %d of the Mapping: %v", f.Addr()-(line2-64), r)
						}
						panic(r)
					}
				}()
				for i := range packets {
					now = now.Add(time.Millisecond)
					// TCP: data both ways, so the windows are tracked too.
					var so, si Segment
					if proto == TCP {
						k := uint32(i) * 1400
						so = Segment{Seq: 1000 + k, Ack: 9000 + k, Len: 1400, Window: 1000, Flags: FlagACK, HasSeq: true}
						si = Segment{Seq: 9000 + k, Ack: 2400 + k, Len: 1400, Window: 1000, Flags: FlagACK, HasSeq: true}
					}
					if i%2 == 1 {
						// The hit path, which the engine tries first.
						if got := tab.outboundHit(proto, in, rem, &so, 1400, now); got != c {
							t.Fatalf("outbound hit: %p (want %p)", got, c)
						}
						if got, v, ok := tab.inboundHit(proto, c.External(), rem, &si, 1400, now); !ok || v != Accept || got != c {
							t.Fatalf("inbound hit: %v %v, %p (want %p)", ok, v, got, c)
						}
						continue
					}
					got, _, err := tab.OutboundSeg(proto, in, rem, so, now)
					if err != nil || got != c {
						t.Fatalf("outbound: %v, %p (want %p)", err, got, c)
					}
					got.AddBytes(true, 1400)
					got, v := tab.InboundSeg(proto, c.External(), rem, si, now)
					if v != Accept || got != c {
						t.Fatalf("inbound: %v, %p (want %p)", v, got, c)
					}
					got.AddBytes(false, 1400)
				}
			}()
			if err := syscall.Mprotect(guard, syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
				t.Fatal(err)
			}
			if proto == TCP && c.win(0)[1].end != 9000+packets*1400 {
				t.Errorf("the windows were not tracked: %+v", *c.win(0))
			}
			if c.PacketsOut() != packets+1 || c.PacketsIn() != packets+1 || c.BytesOut() != packets*1400 {
				t.Errorf("counters: %d out, %d in, %d bytes out", c.PacketsOut(), c.PacketsIn(), c.BytesOut())
			}
		})
	}
}

// swapIndexed makes both indexes hold to instead of from.
func swapIndexed(t *testing.T, tab *Table, from, to *Mapping) {
	t.Helper()
	n := 0
	for _, x := range []*index{&tab.out, &tab.in} {
		for si := range x.shards {
			for i := range x.shards[si].slots {
				if x.shards[si].slots[i].m == from {
					x.shards[si].slots[i].m = to
					n++
				}
			}
		}
	}
	if n != 2 {
		t.Fatalf("mapping held %d times in the indexes, want 2", n)
	}
}
