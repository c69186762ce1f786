package observe

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/impair"
	"github.com/gonat/gonat/nat"
	"github.com/gonat/gonat/table"
)

// MetricsNAT is what the metrics read of one NAT.
type MetricsNAT struct {
	Name     string
	Engine   *nat.Engine
	Outbound *Traffic // packets written to the outside port
	Inbound  *Traffic // packets written to inside ports
	// Router, if set, gives the drops of its links' impairment.
	Router *forward.Router
}

// Collector exports NATs' counters to Prometheus, read at scrape time
// (nothing on the packet path beyond the counters themselves).
type Collector struct {
	NATs []MetricsNAT
	Hub  *Hub
	// Links are the links outside every NAT that drop packets: a lab's
	// public hosts' impaired links.
	Links []MetricsLink
	// WebStreams, if set, reports the web view's event streams: open
	// now, and turned away over the cap since start.
	WebStreams func() (open int64, refused uint64)

	packets, bytes, verdicts, mappings, created, expired, poolUsed, poolSize, lost, lockWaits, icmpLimited, impairDrops, drops *prometheus.Desc
	webStreams, webRefused                                                                                                     *prometheus.Desc
	linkDrops                                                                                                                  *prometheus.Desc
}

// MetricsLink is a link outside every NAT, by name, and what it drops:
// a lab's public host's impaired link (its wire), by the host's name.
type MetricsLink struct {
	Name    string
	Counter DropCounter
}

// NewCollector describes the metrics.
func NewCollector(hub *Hub, nats ...MetricsNAT) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("gonat_"+name, help, labels, nil)
	}
	return &Collector{NATs: nats, Hub: hub,
		packets:    d("packets_total", "Packets translated and sent on, by direction (outbound: to the outside port) and protocol.", "nat", "direction", "proto"),
		bytes:      d("bytes_total", "Bytes translated and sent on, by direction and protocol.", "nat", "direction", "proto"),
		verdicts:   d("verdicts_total", "Packets by the engine's verdict: forward, or the drop reason.", "nat", "verdict"),
		mappings:   d("mappings", "Live mappings by protocol.", "nat", "proto"),
		created:    d("mappings_created_total", "Mappings created.", "nat"),
		expired:    d("mappings_expired_total", "Mappings expired.", "nat"),
		poolUsed:   d("port_pool_used", "External ports (or ICMP identifiers) in use.", "nat", "proto"),
		poolSize:   d("port_pool_size", "External ports (or ICMP identifiers) available.", "nat", "proto"),
		lost:       d("events_lost_total", "Events watchers missed because they fell behind."),
		webStreams: d("web_event_streams", "Live web view pages (event streams) open."),
		webRefused: d("web_event_streams_refused_total", "Live web view pages turned away with 503: more were open than --web-streams allows."),
		lockWaits: d("engine_lock_waits_total", "Times a packet (or a table query) found an engine lock it needed held and waited: "+
			"a packet of an existing mapping waits only for its own queue's lock and its mapping's stripe (another queue on the same flow, or on one whose mapping shares the stripe); a new mapping, a TCP state change or a query waits for every queue's packet in flight.", "nat"),
		icmpLimited: d("icmp_errors_limited_total", "ICMP errors (Time Exceeded, 3/13) the NAT held back under its rate limits (icmp-rate, icmp-interval); "+
			"their packets count under the verdict they were dropped for.", "nat"),
		impairDrops: d("impair_drops_total", "Packets the impairment of the NAT's links dropped, by reason (impair-loss, queue-overflow): "+
			"after the engine, which counted them under verdict forward.", "nat", "reason"),
		linkDrops: d("link_drops_total", "Packets the impairment of a link outside every NAT (a lab's public host's, by the host's name) dropped, "+
			"by reason (impair-loss, queue-overflow).", "link", "reason"),
		drops: d("drops_total", "Packets dropped, by reason, whichever layer dropped them: the engine's drop verdicts (as in verdicts_total) "+
			"and the links' (link-down, impair-loss, queue-overflow). Each packet counts once.", "nat", "reason"),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.packets, c.bytes, c.verdicts, c.mappings, c.created, c.expired, c.poolUsed, c.poolSize, c.lost, c.lockWaits, c.icmpLimited, c.impairDrops, c.drops, c.webStreams, c.webRefused, c.linkDrops} {
		ch <- d
	}
}

var protos = []table.Protocol{table.UDP, table.TCP, table.ICMP}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, n := range c.NATs {
		for dir, tr := range map[string]*Traffic{"outbound": n.Outbound, "inbound": n.Inbound} {
			if tr == nil {
				continue
			}
			tr.Each(func(proto uint8, p, b uint64) {
				ps := table.Protocol(proto).String()
				ch <- prometheus.MustNewConstMetric(c.packets, prometheus.CounterValue, float64(p), n.Name, dir, ps)
				ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(b), n.Name, dir, ps)
			})
		}
		for _, v := range nat.Verdicts() {
			ch <- prometheus.MustNewConstMetric(c.verdicts, prometheus.CounterValue, float64(n.Engine.Count(v)), n.Name, v.String())
		}
		ch <- prometheus.MustNewConstMetric(c.lockWaits, prometheus.CounterValue, float64(n.Engine.LockWaits()), n.Name)
		ch <- prometheus.MustNewConstMetric(c.icmpLimited, prometheus.CounterValue, float64(n.Engine.ICMPErrorsLimited()), n.Name)
		if n.Router != nil {
			for why := impair.Loss; why < impair.NumReasons; why++ {
				ch <- prometheus.MustNewConstMetric(c.impairDrops, prometheus.CounterValue, float64(n.Router.ImpairDrops(why)), n.Name, why.String())
			}
		}
		NATDrops(n.Engine, n.Router).Drops(func(reason string, v uint64) {
			ch <- prometheus.MustNewConstMetric(c.drops, prometheus.CounterValue, float64(v), n.Name, reason)
		})
		live := n.Engine.LiveMappings(now)
		for _, p := range protos {
			ch <- prometheus.MustNewConstMetric(c.mappings, prometheus.GaugeValue, float64(live[p]), n.Name, p.String())
			used, size := n.Engine.PoolUsage(p)
			ch <- prometheus.MustNewConstMetric(c.poolUsed, prometheus.GaugeValue, float64(used), n.Name, p.String())
			ch <- prometheus.MustNewConstMetric(c.poolSize, prometheus.GaugeValue, float64(size), n.Name, p.String())
		}
		if c.Hub != nil {
			cr, ex := c.Hub.NATCounts(n.Name)
			ch <- prometheus.MustNewConstMetric(c.created, prometheus.CounterValue, float64(cr), n.Name)
			ch <- prometheus.MustNewConstMetric(c.expired, prometheus.CounterValue, float64(ex), n.Name)
		}
	}
	for _, l := range c.Links {
		l.Counter.Drops(func(reason string, v uint64) {
			ch <- prometheus.MustNewConstMetric(c.linkDrops, prometheus.CounterValue, float64(v), l.Name, reason)
		})
	}
	if c.Hub != nil {
		_, _, lost := c.Hub.Counts()
		ch <- prometheus.MustNewConstMetric(c.lost, prometheus.CounterValue, float64(lost))
	}
	if c.WebStreams != nil {
		open, refused := c.WebStreams()
		ch <- prometheus.MustNewConstMetric(c.webStreams, prometheus.GaugeValue, float64(open))
		ch <- prometheus.MustNewConstMetric(c.webRefused, prometheus.CounterValue, float64(refused))
	}
}

// ServeMetrics serves /metrics on addr until ctx ends and returns the
// address it listens on (addr may use port 0).
func ServeMetrics(ctx context.Context, addr string, c *Collector) (net.Addr, error) {
	reg := prometheus.NewRegistry()
	// The process's own health beside the NATs': go_goroutines,
	// go_memstats_*, process_open_fds, process_resident_memory_bytes.
	for _, col := range []prometheus.Collector{c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(col); err != nil {
			return nil, err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err
		}
	}()
	return ln.Addr(), nil
}
