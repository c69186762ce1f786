package web

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gonat/gonat/observe"
)

// fakeSource is a Source the tests drive by hand. Unlike a real source
// it waits up to a second for a subscriber to take each event, and counts
// every wait that ran out: a handler that does not drain its
// subscription promptly shows up as blocked > 0.
type fakeSource struct {
	mu   sync.Mutex
	snap Snapshot
	subs map[*fakeSub]struct{}

	subscribed atomic.Int64 // Subscribe calls
	snapshots  atomic.Int64 // Snapshot calls
	blocked    atomic.Int64 // sends that waited a second and gave up
}

type fakeSub struct {
	ctx context.Context
	ch  chan Event
}

func newFake(s Snapshot) *fakeSource {
	return &fakeSource{snap: s, subs: map[*fakeSub]struct{}{}}
}

// Snapshot returns the last snapshot set, its NATs' mappings and their
// remotes cut to page and counted; tests replace it whole and never change one they handed
// over.
func (f *fakeSource) Snapshot(page Page) Snapshot {
	f.snapshots.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return cut(f.snap, page)
}

// cut is s as a Source gives it for page.
func cut(s Snapshot, page Page) Snapshot {
	nats := make([]NAT, len(s.NATs))
	for i, n := range s.NATs {
		all := n.Mappings
		n.Mappings, n.MappingsTotal = nil, len(all)
		for j, m := range all {
			if page.In(j) {
				if len(m.Remotes) > page.Remotes {
					m.Remotes, m.RemotesTotal = m.Remotes[:page.Remotes:page.Remotes], len(m.Remotes)
				}
				n.Mappings = append(n.Mappings, m)
			}
		}
		nats[i] = n
	}
	s.NATs = nats
	return s
}

func (f *fakeSource) set(s Snapshot) {
	f.mu.Lock()
	f.snap = s
	f.mu.Unlock()
}

func (f *fakeSource) Subscribe(ctx context.Context) <-chan Event {
	f.subscribed.Add(1)
	s := &fakeSub{ctx: ctx, ch: make(chan Event, 8)}
	f.mu.Lock()
	f.subs[s] = struct{}{}
	f.mu.Unlock()
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		delete(f.subs, s)
		close(s.ch)
		f.mu.Unlock()
	}()
	return s.ch
}

// active is the number of subscriptions still open.
func (f *fakeSource) active() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeSource) emit(ev Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for s := range f.subs {
		t := time.NewTimer(time.Second)
		select {
		case s.ch <- ev:
		case <-s.ctx.Done():
		case <-t.C:
			f.blocked.Add(1)
		}
		t.Stop()
	}
}

// twoHomes is a small lab: two homes behind different NATs and a STUN
// server on the public network, with a few mappings.
func twoHomes() Snapshot {
	return Snapshot{
		Name: "two-homes",
		Nodes: []Node{
			{Name: "public", Kind: "public", Network: "", Addresses: nil},
			{Name: "home-a", Kind: "nat", Network: "public", Addresses: []string{"198.51.100.1", "10.0.1.1"}},
			{Name: "home-b", Kind: "nat", Network: "public", Addresses: []string{"198.51.100.2", "10.0.2.1"}},
			{Name: "alice", Kind: "host", Network: "home-a", Addresses: []string{"10.0.1.2"}},
			{Name: "bob", Kind: "host", Network: "home-b", Addresses: []string{"10.0.2.2"}},
			{Name: "stun", Kind: "host", Network: "public", Addresses: []string{"203.0.113.10", "203.0.113.11"}},
		},
		NATs: []NAT{
			{
				NAT: observe.NAT{Name: "home-a", Mapping: "endpoint-independent", Filtering: "address-and-port-dependent",
					PortAssignment: "sequential", Hairpin: true,
					Packets: map[string]uint64{"forward": 1234, "filtered": 3}},
				Mappings: []observe.Mapping{
					{Proto: "udp", Internal: "10.0.1.2:5000", External: "198.51.100.1:40001",
						Remotes: []string{"203.0.113.10:3478"}, ExpiresIn: 4*60 + 31, PacketsOut: 12, PacketsIn: 9},
					{Proto: "tcp", Internal: "10.0.1.2:43122", External: "198.51.100.1:40002",
						Remotes: []string{"203.0.113.20:7000"}, ExpiresIn: 2*3600 + 3*60, PacketsOut: 1042, PacketsIn: 981},
				},
			},
			{
				NAT: observe.NAT{Name: "home-b", Mapping: "address-and-port-dependent", Filtering: "address-and-port-dependent",
					PortAssignment: "random", Hairpin: true,
					Packets: map[string]uint64{"forward": 87, "no-mapping": 2, "filtered": 1}},
				Mappings: []observe.Mapping{
					{Proto: "udp", Internal: "10.0.2.2:6000", External: "198.51.100.2:51234",
						Remotes: []string{"203.0.113.10:3478"}, ExpiresIn: 27, PacketsOut: 4, PacketsIn: 4},
					{Proto: "udp", Internal: "10.0.2.2:6000", External: "198.51.100.2:62817",
						Remotes: []string{"203.0.113.11:3478"}, ExpiresIn: 8, PacketsOut: 1, PacketsIn: 0},
				},
			},
		},
	}
}

// withoutMapping returns s without home-a's mapping of 10.0.1.2:5000, as
// after it expired.
func withoutMapping(s Snapshot) Snapshot {
	nats := make([]NAT, len(s.NATs))
	copy(nats, s.NATs)
	for i, n := range nats {
		var keep []observe.Mapping
		for _, m := range n.Mappings {
			if m.Internal != "10.0.1.2:5000" {
				keep = append(keep, m)
			}
		}
		nats[i].Mappings = keep
	}
	s.NATs = nats
	return s
}

var expireEvent = Event{
	NAT: "home-a", Kind: "EXPIRE",
	Text: "udp 10.0.1.2:5000 <-> 198.51.100.1:40001",
}
