package nat

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"
)

// ICMP error rate limits (RFC 1812 §4.3.2.8, RFC 4443 §2.4 (f)): token
// buckets, one for all errors and one per destination, as Linux keeps
// them (icmp_msgs_per_sec with icmp_msgs_burst, and icmp_ratelimit per
// peer with a burst of 6). Without them a flood of TTL=1 probes or of
// new flows with no port left makes the NAT a reflector.
const (
	icmpBurst     = 50   // errors in all at once, as Linux's icmp_msgs_burst
	icmpDestBurst = 6    // errors to one destination at once (Linux's XRLIM_BURST_FACTOR)
	icmpDests     = 1024 // destinations tracked; a newcomer takes its slot's place
)

// bucket is a token bucket kept as time: budget is the time's worth of
// errors it may send now, each costing one interval, up to a burst's
// worth.
type bucket struct {
	budget int64 // ns
	last   int64 // ns since the epoch of the last refill; 0: never used
}

// refilled returns b's budget at now, capped at max.
func (b *bucket) refilled(now, max int64) int64 {
	if b.last == 0 {
		return max
	}
	n := b.budget
	if now > b.last { // the queues' clocks are read apart: never go back
		n += now - b.last
	}
	return min(n, max)
}

// destBucket is the bucket of one destination address.
type destBucket struct {
	addr uint32 // destKey
	bucket
}

// icmpLimiter decides whether the NAT may send an ICMP error now. Safe
// for concurrent use.
type icmpLimiter struct {
	mu       sync.Mutex
	cost     int64 // ns per error in all; 0: no limit
	destCost int64 // ns per error to one destination; 0: no limit
	total    bucket
	// dests are apart from the engine, which they would otherwise
	// spread over 24 KiB.
	dests *[icmpDests]destBucket
}

// set configures the limits: rate errors per second in all, one per
// interval to each destination; 0 for no limit. The buckets start full.
func (l *icmpLimiter) set(rate int, interval time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cost = 0
	if rate > 0 {
		l.cost = int64(time.Second) / int64(rate)
		if l.cost == 0 {
			l.cost = 1
		}
	}
	l.destCost = int64(interval)
	l.total = bucket{}
	// Made by the first error that needs them: most NATs of a large lab
	// never send one, and the 24 KiB would be most of an idle NAT.
	l.dests = nil
}

// allow reports whether an ICMP error to dst may go at now, and if so
// takes its tokens: from both buckets, or from neither.
func (l *icmpLimiter) allow(dst netip.Addr, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cost == 0 && l.destCost == 0 {
		return true
	}
	t := now.UnixNano()
	var total, dest int64
	if l.cost > 0 {
		total = l.total.refilled(t, icmpBurst*l.cost)
		if total < l.cost {
			return false
		}
	}
	var d *destBucket
	if l.destCost > 0 {
		k := destKey(dst)
		if l.dests == nil {
			l.dests = new([icmpDests]destBucket)
		}
		d = &l.dests[(k*0x9e3779b1)>>(32-10)] // icmpDests is 1<<10
		if d.addr != k || d.last == 0 {
			*d = destBucket{addr: k}
		}
		dest = d.refilled(t, icmpDestBurst*l.destCost)
		if dest < l.destCost {
			return false
		}
	}
	if l.cost > 0 {
		l.total = bucket{budget: total - l.cost, last: t}
	}
	if d != nil {
		d.bucket = bucket{budget: dest - l.destCost, last: t}
	}
	return true
}

// destKey names destination a in 32 bits: an IPv4 address as itself, an
// IPv6 one folded. Two IPv6 destinations that fold alike share a bucket,
// which only makes their errors scarcer, never more.
func destKey(a netip.Addr) uint32 {
	if a.Is4() {
		a4 := a.As4()
		return binary.BigEndian.Uint32(a4[:])
	}
	a16 := a.As16()
	h := uint64(0)
	for i := 0; i < 16; i += 8 {
		h = (h ^ binary.BigEndian.Uint64(a16[i:])) * 0x9e3779b97f4a7c15
	}
	return uint32(h >> 32)
}
