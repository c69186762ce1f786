package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/gonat/gonat/observe"
)

// gonat table prints the mappings as they are read, in the forms it
// printed when it had the whole table at once: --json the encoding of the
// whole list (null when empty), the text one tabwriter table.
func TestPrintTableAsBefore(t *testing.T) {
	many := make([]observe.Mapping, 3000)
	for i := range many {
		many[i] = observe.Mapping{NAT: "home", Proto: "udp", Internal: fmt.Sprintf("10.0.1.2:%d", 10000+i),
			External: fmt.Sprintf("198.51.100.1:%d", 40000+i), Remotes: []string{"203.0.113.10:3478", "203.0.113.11:80 (ESTABLISHED)"},
			ExpiresIn: int64(i % 300), Age: "1m5s", PacketsOut: uint64(i), PacketsIn: 2, BytesOut: 3, BytesIn: 4}
	}
	for _, rows := range [][]observe.Mapping{nil, many[:1], many} {
		read := func(fn func(observe.Mapping) error) error {
			for _, m := range rows {
				if err := fn(m); err != nil {
					return err
				}
			}
			return nil
		}

		var got, want bytes.Buffer
		if err := printTableJSON(&got, read); err != nil {
			t.Fatal(err)
		}
		json.NewEncoder(&want).Encode(rows)
		if got.String() != want.String() {
			t.Errorf("%d rows: --json printed %.200q..., want %.200q...", len(rows), got.String(), want.String())
		}

		got.Reset()
		want.Reset()
		if err := printTable(&got, read); err != nil {
			t.Fatal(err)
		}
		tw := tabwriter.NewWriter(&want, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAT\tPROTO\tINSIDE\tEXTERNAL\tREMOTES (STATE)\tEXPIRES IN\tPKTS OUT/IN")
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d/%d\n", r.NAT, r.Proto, r.Internal, r.External, strings.Join(r.Remotes, ","), time.Duration(r.ExpiresIn)*time.Second, r.PacketsOut, r.PacketsIn)
		}
		tw.Flush()
		if got.String() != want.String() {
			t.Errorf("%d rows: text\n%.300s\nwant\n%.300s", len(rows), got.String(), want.String())
		}
	}
}
