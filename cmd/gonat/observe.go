package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/gonat/gonat/forward"
	"github.com/gonat/gonat/lab"
	"github.com/gonat/gonat/observe"
	"github.com/gonat/gonat/web"
)

// observers are the observability flags shared by gonat run and lab up.
type observers struct {
	pcapInside, pcapOutside *string
	metrics                 *string
	web                     *string
	webStreams              *int
	expose                  *bool

	inPcap, outPcap   *observe.Pcap
	inbound, outbound observe.Traffic
}

func observerFlags(fs *flag.FlagSet) *observers {
	return &observers{
		pcapInside:  fs.String("pcap-inside", "", "write every packet on the inside ports (before outbound / after inbound translation) to this pcap `FILE`"),
		pcapOutside: fs.String("pcap-outside", "", "write every packet on the outside port (after outbound / before inbound translation) to this pcap `FILE`"),
		metrics:     fs.String("metrics", "", "serve Prometheus metrics on `ADDR` (e.g. 127.0.0.1:9100, port 0 picks one) at /metrics; loopback only unless --expose"),
		web:         fs.String("web", "", "serve a live web view (topology, mappings, events) on `ADDR`, e.g. 127.0.0.1:8080; loopback only unless --expose"),
		webStreams:  webStreamsFlag(fs),
		expose:      exposeFlag(fs),
	}
}

// webStreamsFlag is --web-streams, which gonat run and lab up share.
func webStreamsFlag(fs *flag.FlagSet) *int {
	return fs.Int("web-streams", web.DefaultMaxStreams, "most live web view pages (event streams) open at once; past it a page gets 503 Service Unavailable")
}

// exposeFlag is --expose, which gonat run and lab up share.
func exposeFlag(fs *flag.FlagSet) *bool {
	return fs.Bool("expose", false, "allow --web and --metrics on an address other than loopback (:PORT, 0.0.0.0:PORT, a LAN address): "+
		"they show every mapping, unauthenticated, to anyone who can connect")
}

// checkExposure refuses --web and --metrics on an address other hosts can
// reach unless --expose says so: both serve the NAT's mappings and
// counters without authentication. It checks --web-streams too.
func checkExposure(web, metrics string, expose bool, webStreams int) error {
	if webStreams < 1 {
		return usageErr("--web-streams %d: want 1 or more", webStreams)
	}
	for _, f := range []struct{ name, addr string }{{"--web", web}, {"--metrics", metrics}} {
		if f.addr == "" || expose || isLoopback(f.addr) {
			continue
		}
		return usageErr("%s %s: not a loopback address; it would serve every mapping, unauthenticated, to anyone who can reach it: "+
			"use 127.0.0.1:PORT, or add --expose", f.name, f.addr)
	}
	return nil
}

// isLoopback reports whether listening on addr (HOST:PORT) accepts
// connections from this host only: HOST is a loopback address or
// "localhost". An empty HOST (":PORT") listens on every address.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// tap opens the capture files and returns the packet tap for
// lab.NATSpec.Tap (nil when nothing is asked).
func (o *observers) tap() (forward.Tap, error) {
	var err error
	if *o.pcapInside != "" {
		if o.inPcap, err = observe.CreatePcap(*o.pcapInside); err != nil {
			return nil, usageErr("--pcap-inside: %v", err)
		}
	}
	if *o.pcapOutside != "" {
		if o.outPcap, err = observe.CreatePcap(*o.pcapOutside); err != nil {
			return nil, usageErr("--pcap-outside: %v", err)
		}
	}
	if o.inPcap == nil && o.outPcap == nil && *o.metrics == "" {
		return nil, nil
	}
	return observe.Sides(&observe.Tap{Pcap: o.outPcap, Written: &o.outbound}, &observe.Tap{Pcap: o.inPcap, Written: &o.inbound}), nil
}

func (o *observers) close() {
	if o.inPcap != nil {
		o.inPcap.Close()
	}
	if o.outPcap != nil {
		o.outPcap.Close()
	}
}

// startObservers starts the web view and the metrics endpoint.
func startObservers(ctx context.Context, l *lab.Lab, o *observers) error {
	stats := new(web.Stats)
	if *o.web != "" {
		addr, err := web.ListenAndServe(ctx, *o.web, l.WebSource(), web.Options{MaxStreams: *o.webStreams, Stats: stats})
		if err != nil {
			return usageErr("--web: %v", err)
		}
		fmt.Fprintf(os.Stderr, "gonat: web view on http://%s/\n", addr)
		exposedWarning(*o.web, *o.expose)
	}
	if *o.metrics == "" {
		return nil
	}
	var nats []observe.MetricsNAT
	for _, name := range l.NATNames() {
		nats = append(nats, observe.MetricsNAT{Name: name, Engine: l.NAT(name).Engine, Outbound: &o.outbound, Inbound: &o.inbound, Router: l.NAT(name).Router})
	}
	c := observe.NewCollector(l.Events, nats...)
	c.Links = l.MetricsLinks()
	if *o.web != "" {
		c.WebStreams = func() (int64, uint64) { return stats.Open(), stats.Refused() }
	}
	addr, err := observe.ServeMetrics(ctx, *o.metrics, c)
	if err != nil {
		return usageErr("--metrics: %v", err)
	}
	fmt.Fprintf(os.Stderr, "gonat: metrics on http://%s/metrics\n", addr)
	exposedWarning(*o.metrics, *o.expose)
	return nil
}

// exposedWarning says, once the endpoint listens, that --expose let it
// listen beyond loopback.
func exposedWarning(addr string, expose bool) {
	if expose && !isLoopback(addr) {
		fmt.Fprintf(os.Stderr, "gonat: warning: %s is reachable from other hosts (--expose), without authentication\n", addr)
	}
}
