package impair

import "time"

// Reason says why an Impairer dropped a packet. Its String is the counter label.
type Reason uint8

const (
	Pass          Reason = iota // not dropped
	Loss                        // random or burst loss
	QueueOverflow               // the rate queue was full (tail drop)
	NumReasons
)

func (r Reason) String() string {
	switch r {
	case Pass:
		return "pass"
	case Loss:
		return "impair-loss"
	case QueueOverflow:
		return "queue-overflow"
	}
	return "unknown"
}

// Decision is what to do with one packet.
type Decision struct {
	Drop Reason
	// Due is when to send the packet, on the caller's clock (see Impairer.Decide); Due <= now
	// means at once.
	Due int64
	// Duplicate asks for the packet to be sent twice, both at Due.
	Duplicate bool
	// Corrupt, when set, asks for CorruptBit to be flipped in the copy sent.
	Corrupt    bool
	CorruptBit uint32
	// Reordered marks a packet sent at once, ahead of the delayed ones (reorder=).
	Reordered bool
}

// FlipBit flips bit (taken modulo the packet's bit count) in pkt, as asked by a Decision.
func FlipBit(pkt []byte, bit uint32) {
	if len(pkt) == 0 {
		return
	}
	n := bit % uint32(len(pkt)*8)
	pkt[n/8] ^= 1 << (n % 8)
}

// An Impairer decides the fate of the packets of one direction of one link. Each parameter
// draws from its own random stream, so the packets lost under loss=10% are the same whether or
// not delay or duplication are set too. Not safe for concurrent use: one caller at a time.
type Impairer struct {
	spec Spec

	loss, gilbert, jitter, dup, reorder, corrupt rng
	lossT, dupT, reorderT, corruptT, gp, gr      uint64 // probabilities as thresholds
	bad                                          bool   // Gilbert-Elliott state

	lastDue int64 // latest due time handed out, to keep order under jitter
	// The rate queue in virtual time: busyUntil is when the link finishes what it was given;
	// departures (for queue=Np) holds the finish times of packets still queued, oldest first.
	busyUntil  int64
	departures []int64
	depHead    int
	depLen     int
}

// Stream constants separate the random streams of one Impairer and of the two directions.
const (
	streamLoss = iota + 1
	streamGilbert
	streamJitter
	streamDup
	streamReorder
	streamCorrupt
)

// New returns an Impairer for spec. seed and stream choose the random sequence: use one seed
// per run (the NAT's --seed) and a distinct stream per link direction.
func New(spec Spec, seed, stream uint64) *Impairer {
	im := &Impairer{spec: spec}
	base := mix(seed ^ mix(stream+0x9e3779b97f4a7c15))
	im.loss = newRNG(base, streamLoss)
	im.gilbert = newRNG(base, streamGilbert)
	im.jitter = newRNG(base, streamJitter)
	im.dup = newRNG(base, streamDup)
	im.reorder = newRNG(base, streamReorder)
	im.corrupt = newRNG(base, streamCorrupt)
	im.lossT = threshold(spec.Loss)
	im.dupT = threshold(spec.Duplicate)
	im.reorderT = threshold(spec.Reorder)
	im.corruptT = threshold(spec.Corrupt)
	if spec.Gilbert != nil {
		im.gp = threshold(spec.Gilbert.P)
		im.gr = threshold(spec.Gilbert.R)
	}
	if spec.QueuePackets > 0 {
		im.departures = make([]int64, spec.QueuePackets)
	}
	return im
}

// Spec returns the spec the Impairer applies.
func (im *Impairer) Spec() Spec { return im.spec }

// Delays reports whether packets may be held back (delay, jitter or rate), so the caller needs
// a Queue; without it every Decision is due at once.
func (im *Impairer) Delays() bool {
	return im.spec.Delay > 0 || im.spec.Jitter > 0 || im.spec.Rate > 0
}

// Matches reports whether im impairs packets of IP version v (4 or 6):
// under family= the other version passes without a decision.
func (im *Impairer) Matches(v uint8) bool { return im.spec.Matches(v) }

// Decide decides the fate of the next packet, size bytes long, arriving at now. Clocks are
// nanoseconds on any monotonic clock the caller keeps (time is passed in, never read here);
// the same seed and the same sequence of (now, size) give the same decisions.
func (im *Impairer) Decide(now int64, size int) Decision {
	d := Decision{Due: now}
	if im.lost() {
		d.Drop = Loss
		return d
	}
	if im.spec.Rate > 0 {
		start := max(now, im.busyUntil)
		if !im.admit(now, start) {
			d.Drop = QueueOverflow
			return d
		}
		im.busyUntil = start + int64(uint64(size)*8*uint64(time.Second)/im.spec.Rate)
		if im.departures != nil {
			im.pushDeparture(im.busyUntil)
		}
		d.Due = im.busyUntil
	}
	if im.reorderT != 0 && im.reorder.chance(im.reorderT) {
		d.Reordered = true
	} else if im.spec.Delay > 0 || im.spec.Jitter > 0 {
		delay := int64(im.spec.Delay)
		if j := int64(im.spec.Jitter); j > 0 {
			delay += int64(im.jitter.next()%uint64(2*j+1)) - j
		}
		d.Due += delay
		// Jitter keeps order: a packet never overtakes the one before it (reorder= does that).
		d.Due = max(d.Due, im.lastDue)
		im.lastDue = d.Due
	}
	if im.dupT != 0 && im.dup.chance(im.dupT) {
		d.Duplicate = true
	}
	if im.corruptT != 0 && im.corrupt.chance(im.corruptT) {
		d.Corrupt = true
		d.CorruptBit = uint32(im.corrupt.next())
	}
	return d
}

// lost draws the loss decision: one draw per packet from the loss stream (random) or one
// transition draw per packet (Gilbert-Elliott, evaluated before the packet).
func (im *Impairer) lost() bool {
	if g := im.spec.Gilbert; g != nil {
		if im.bad {
			if im.gilbert.chance(im.gr) {
				im.bad = false
			}
		} else if im.gilbert.chance(im.gp) {
			im.bad = true
		}
		return im.bad
	}
	return im.lossT != 0 && im.loss.chance(im.lossT)
}

// admit reports whether a packet arriving at now, starting to leave at start, fits the queue.
func (im *Impairer) admit(now, start int64) bool {
	if im.departures == nil {
		return start-now <= int64(im.spec.QueueTime)
	}
	for im.depLen > 0 && im.departures[im.depHead] <= now {
		im.depHead = (im.depHead + 1) % len(im.departures)
		im.depLen--
	}
	return im.depLen < len(im.departures)
}

func (im *Impairer) pushDeparture(t int64) {
	im.departures[(im.depHead+im.depLen)%len(im.departures)] = t
	im.depLen++
}

// rng is SplitMix64 (Steele, Lea, Flood 2014): 64-bit state, one add and a mix per draw,
// passes BigCrush; small enough to own, so decisions never depend on math/rand's versions.
type rng struct{ s uint64 }

func newRNG(base, stream uint64) rng { return rng{s: mix(base + stream*0xbf58476d1ce4e5b9)} }

func (r *rng) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	return mix(r.s)
}

// chance is true with probability t/2^64 (t from threshold; the maximum means always).
func (r *rng) chance(t uint64) bool {
	if t == ^uint64(0) {
		r.next()
		return true
	}
	return r.next() < t
}

func mix(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// threshold maps a probability to a uint64 compared against a uniform draw.
func threshold(p float64) uint64 {
	switch {
	case p <= 0:
		return 0
	case p >= 1:
		return ^uint64(0)
	}
	return uint64(p * (1 << 64))
}
