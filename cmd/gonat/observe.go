package main

import (
	"context"
	"flag"
	"fmt"
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

	inPcap, outPcap   *observe.Pcap
	inbound, outbound observe.Traffic
}

func observerFlags(fs *flag.FlagSet) *observers {
	return &observers{
		pcapInside:  fs.String("pcap-inside", "", "write every packet on the inside ports (before outbound / after inbound translation) to this pcap `FILE`"),
		pcapOutside: fs.String("pcap-outside", "", "write every packet on the outside port (after outbound / before inbound translation) to this pcap `FILE`"),
		metrics:     fs.String("metrics", "", "serve Prometheus metrics on `ADDR` (e.g. 127.0.0.1:9100, port 0 picks one) at /metrics"),
		web:         fs.String("web", "", "serve a live web view (topology, mappings, events) on `ADDR`, e.g. 127.0.0.1:8080"),
	}
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
	if *o.web != "" {
		addr, err := web.ListenAndServe(ctx, *o.web, l.WebSource())
		if err != nil {
			return usageErr("--web: %v", err)
		}
		fmt.Fprintf(os.Stderr, "gonat: web view on http://%s/\n", addr)
	}
	if *o.metrics == "" {
		return nil
	}
	var nats []observe.MetricsNAT
	for _, name := range l.NATNames() {
		nats = append(nats, observe.MetricsNAT{Name: name, Engine: l.NAT(name).Engine, Outbound: &o.outbound, Inbound: &o.inbound})
	}
	addr, err := observe.ServeMetrics(ctx, *o.metrics, observe.NewCollector(l.Events, nats...))
	if err != nil {
		return usageErr("--metrics: %v", err)
	}
	fmt.Fprintf(os.Stderr, "gonat: metrics on http://%s/metrics\n", addr)
	return nil
}
