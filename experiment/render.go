package experiment

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// RenderMatrix prints the outcomes as a triangle table, observed next to
// expected: "yes", "no", or "YES!"/"NO!" where they disagree.
func RenderMatrix(w io.Writer, types []NATType, outs []Outcome) {
	cell := map[[2]string]Outcome{}
	for _, o := range outs {
		cell[[2]string{o.A, o.B}] = o
		cell[[2]string{o.B, o.A}] = o
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var head []string
	for _, t := range types {
		head = append(head, t.Name)
	}
	fmt.Fprintf(tw, "\t%s\n", strings.Join(head, "\t"))
	for i, a := range types {
		row := []string{a.Name}
		for j, b := range types {
			if j < i {
				row = append(row, "")
				continue
			}
			o, ok := cell[[2]string{a.Name, b.Name}]
			switch {
			case !ok:
				row = append(row, "?")
			case o.Err != "":
				row = append(row, "error")
			case o.Agrees() && o.Connected:
				row = append(row, "yes")
			case o.Agrees():
				row = append(row, "no")
			case o.Connected:
				row = append(row, "YES! (expected no)")
			default:
				row = append(row, "NO! (expected yes)")
			}
		}
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	tw.Flush()
}

// Disagreements lists outcomes that differ from the expected table.
func Disagreements(outs []Outcome) []Outcome {
	var bad []Outcome
	for _, o := range outs {
		if !o.Agrees() {
			bad = append(bad, o)
		}
	}
	return bad
}
