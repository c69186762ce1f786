package main

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"
	"time"
)

// printer prints event lines at most perSecond a second, so --trace
// cannot flood a terminal or slow the NAT: lines over the rate, or
// arriving faster than the terminal takes them, are counted and the
// count is printed instead.
type printer struct {
	w         io.Writer
	lines     chan string
	perSecond int
	lost      atomic.Uint64
}

func newPrinter(w io.Writer, perSecond int) *printer {
	return &printer{w: w, lines: make(chan string, 4096), perSecond: perSecond}
}

// offer never blocks.
func (p *printer) offer(line string) {
	select {
	case p.lines <- line:
	default:
		p.lost.Add(1)
	}
}

func (p *printer) run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	budget := p.perSecond
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if n := p.lost.Swap(0); n > 0 {
				fmt.Fprintf(p.w, "... %d lines not shown (more than %d a second)\n", n, p.perSecond)
			}
			budget = p.perSecond
		case l := <-p.lines:
			if budget == 0 {
				p.lost.Add(1)
				continue
			}
			budget--
			fmt.Fprintln(p.w, l)
		}
	}
}
