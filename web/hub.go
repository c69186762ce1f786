package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

const (
	historySize = 200 // events remembered for pages opened later
	clientQueue = 256 // events queued per connection before it drops
)

// numbered is an Event with its place in the hub's sequence.
type numbered struct {
	Seq uint64
	Event
}

// hub holds one subscription to the source while anyone needs it, keeps
// the last events, and fans them out to the connected pages. It never
// blocks on a page: a page whose queue is full misses the event, and the
// miss is counted.
type hub struct {
	src   Source
	epoch string // tells this hub's event ids from another process's

	mu      sync.Mutex
	refs    int
	cancel  context.CancelFunc
	seq     uint64
	history []numbered // ring, oldest first once full
	next    int        // where the ring writes next once full
	clients map[*client]struct{}

	dropped atomic.Uint64 // all connections' misses
}

type client struct {
	ch      chan numbered
	dropped atomic.Uint64
}

func newHub(src Source) *hub {
	var b [4]byte
	rand.Read(b[:])
	return &hub{src: src, epoch: hex.EncodeToString(b[:]), clients: map[*client]struct{}{}}
}

// acquire keeps the subscription open until the returned func is called.
func (h *hub) acquire() (release func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refs++
	if h.refs == 1 {
		ctx, cancel := context.WithCancel(context.Background())
		h.cancel = cancel
		go h.pump(ctx, h.src.Subscribe(ctx))
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.refs--
			if h.refs == 0 {
				h.cancel()
				h.cancel = nil
			}
		})
	}
}

func (h *hub) pump(ctx context.Context, events <-chan Event) {
	for {
		select {
		case <-ctx.Done():
			// The source closes the channel now; stop listening
			// even if a careless one does not.
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			h.publish(ctx, ev)
		}
	}
}

// publish records ev and hands it to the pages, unless the subscription
// it came from (ctx) has ended: once release cancels it, under h.mu, an
// event the old subscription still delivers could repeat one the next
// subscription delivers too.
func (h *hub) publish(ctx context.Context, ev Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ctx.Err() != nil {
		return
	}
	h.seq++
	n := numbered{Seq: h.seq, Event: ev}
	if len(h.history) < historySize {
		h.history = append(h.history, n)
	} else {
		h.history[h.next] = n
		h.next = (h.next + 1) % historySize
	}
	for c := range h.clients {
		select {
		case c.ch <- n:
		default:
			c.dropped.Add(1)
			h.dropped.Add(1)
		}
	}
}

// recent returns the remembered events after seq, oldest first, and the
// number of the last event published.
func (h *hub) recent(after uint64) ([]numbered, uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.recentLocked(after), h.seq
}

func (h *hub) recentLocked(after uint64) []numbered {
	var out []numbered
	for i := range h.history {
		n := h.history[(h.next+i)%len(h.history)]
		if n.Seq > after {
			out = append(out, n)
		}
	}
	return out
}

// join registers a page that has seen events up to after; it gets the
// remembered ones after that, then live ones on c.ch, with no gap and no
// repeat between the two.
func (h *hub) join(after uint64) (c *client, backlog []numbered, leave func()) {
	release := h.acquire()
	c = &client{ch: make(chan numbered, clientQueue)}
	h.mu.Lock()
	backlog = h.recentLocked(after)
	h.clients[c] = struct{}{}
	h.mu.Unlock()
	return c, backlog, func() {
		h.mu.Lock()
		delete(h.clients, c)
		h.mu.Unlock()
		release()
	}
}

// id is the SSE id of event seq: the browser sends the last one back
// when it reconnects.
func (h *hub) id(seq uint64) string { return h.epoch + "-" + strconv.FormatUint(seq, 10) }

// after parses an id the page sent back: events after it are new to the
// page. An id from another hub (the server restarted) means none are.
func (h *hub) after(id string) uint64 {
	epoch, seq, ok := strings.Cut(id, "-")
	if !ok || epoch != h.epoch {
		return 0
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return 0
	}
	return n
}
