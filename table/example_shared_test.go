package table_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/gonat/gonat/table"
)

// A reading goroutine tries the hit path under its own Reader's lock, and
// falls back to the full path with the table to itself. Calling
// tab.OutboundHit on the *Table instead does not compile: the hit path
// is only on the Hits that Reader.Lock returns.
func ExampleShared() {
	tab, err := table.New(table.Config{External: []netip.Addr{netip.MustParseAddr("203.0.113.1")}})
	if err != nil {
		panic(err)
	}
	shared := table.NewShared(tab)
	reader := shared.NewReader() // one per reading goroutine
	in := netip.MustParseAddrPort("10.0.0.2:5000")
	remote := netip.MustParseAddrPort("198.51.100.7:3478")
	now := time.Unix(1000, 0)

	for range 2 {
		m := reader.Lock().OutboundHit(table.UDP, in, remote, 0, 100, now)
		reader.Unlock()
		if m != nil {
			fmt.Println("hit")
			continue
		}
		t := shared.Lock() // every reader's lock: the table is ours alone
		_, created, err := t.Outbound(table.UDP, in, remote, 0, now)
		shared.Unlock()
		fmt.Println("full path, created:", created, err)
	}
	// Output:
	// full path, created: true <nil>
	// hit
}
