package web

import (
	"fmt"
	"html/template"
	"strings"
	"unicode/utf8"
)

// The topology drawing: the public network as a bar at the top, NATs
// below it, NATs behind NATs below their upstream, hosts below the NAT
// they sit behind, each box with its name and addresses. It is plain SVG
// built here, so the page shows it without JavaScript and /topology.svg
// serves it alone.

const (
	svgMargin = 16.0
	hGap      = 28.0 // between sibling subtrees
	vGap      = 52.0 // between rows
	boxPad    = 12.0
	minBoxW   = 132.0
	barH      = 46.0
	titleH    = 24.0 // name line
	lineH     = 19.0 // other lines
	// Estimated advance widths of the fonts the style sheet sets, on
	// the wide side (DejaVu Sans, Debian's default, is wide).
	titleCharW = 10.2 // 600 16px sans-serif
	monoCharW  = 8.6  // 14px monospace
	smallCharW = 8.2  // 13px sans-serif
	// The page draws the topology this much larger than its
	// coordinates, for the back of the classroom; a narrow window
	// scales it down.
	pageScale = 1.25
)

type tline struct {
	text  string
	class string // name, kind, addr, note, count
	nat   string // for the live mapping count
}

type tbox struct {
	node     Node
	kind     string // public, nat, host
	lines    []tline
	children []*tbox
	w, h     float64
	subW     float64
	x, y     float64
	depth    int
}

func (b *tbox) measure() {
	b.w = minBoxW
	b.h = boxPad * 1.25
	for i, l := range b.lines {
		cw := monoCharW
		switch l.class {
		case "name":
			cw = titleCharW
		case "kind", "note", "count":
			cw = smallCharW
		}
		if w := float64(utf8.RuneCountInString(l.text))*cw + 2*boxPad; w > b.w {
			b.w = w
		}
		if i == 0 {
			b.h += titleH
		} else {
			b.h += lineH
		}
	}
	b.h += boxPad * 0.75
}

// topology draws the snapshot's nodes ("" when there are none). A
// standalone drawing, for /topology.svg, carries its own styles and is
// drawn at its natural size; the page's is larger and styled by the
// page's style sheet.
func topology(s Snapshot, standalone bool) string {
	if len(s.Nodes) == 0 {
		return ""
	}
	nats := map[string]NAT{}
	for _, n := range s.NATs {
		nats[n.Name] = n
	}

	// The root: the public network.
	root := &tbox{kind: "public", node: Node{Name: "public", Kind: "public"}}
	root.lines = []tline{{text: "public network", class: "name"}}
	havePublic := false
	byName := map[string]*tbox{}
	var boxes []*tbox
	for _, n := range s.Nodes {
		switch n.Kind {
		case "public":
			if !havePublic {
				root.node, havePublic = n, true
			}
			continue
		case "nat":
			b := &tbox{node: n, kind: "nat"}
			b.lines = append(b.lines, tline{text: n.Name, class: "name"})
			label := "NAT"
			if nat, ok := nats[n.Name]; ok {
				if c := classic(nat.Mapping, nat.Filtering); c != "" {
					label = "NAT · " + c
				} else {
					label = fmt.Sprintf("NAT · %s / %s", behaviour(nat.Mapping, false).short, behaviour(nat.Filtering, true).short)
				}
			}
			b.lines = append(b.lines, tline{text: label, class: "kind"})
			for _, a := range n.Addresses {
				b.lines = append(b.lines, tline{text: a, class: "addr"})
			}
			if nat, ok := nats[n.Name]; ok {
				b.lines = append(b.lines, tline{text: countText(nat.MappingsTotal), class: "count", nat: n.Name})
			}
			boxes = append(boxes, b)
			if _, dup := byName[n.Name]; !dup {
				byName[n.Name] = b
			}
		default:
			b := &tbox{node: n, kind: "host"}
			b.lines = append(b.lines, tline{text: n.Name, class: "name"})
			for _, a := range n.Addresses {
				b.lines = append(b.lines, tline{text: a, class: "addr"})
			}
			if len(n.Addresses) == 0 {
				b.lines = append(b.lines, tline{text: "host", class: "note"})
			}
			boxes = append(boxes, b)
		}
	}
	for _, a := range root.node.Addresses {
		root.lines = append(root.lines, tline{text: a, class: "addr"})
	}

	// Parents: a NAT's upstream, a host's NAT; an unknown one means
	// the public network, and so does a loop of upstreams for the NATs
	// in it (the others below them hang off them as usual).
	parent := func(b *tbox) *tbox {
		p, ok := byName[b.node.Network]
		if !ok {
			return root
		}
		q := p
		for range len(byName) {
			if q == b {
				return root
			}
			if q, ok = byName[q.node.Network]; !ok {
				break
			}
		}
		return p
	}
	// Under the public network, NATs come first and public hosts
	// (servers) to their right; elsewhere the nodes keep their order.
	var publicHosts []*tbox
	for _, b := range boxes {
		p := parent(b)
		if p == root && b.kind == "host" {
			publicHosts = append(publicHosts, b)
			continue
		}
		p.children = append(p.children, b)
	}
	root.children = append(root.children, publicHosts...)

	// Sizes, bottom up; depths and row heights.
	var rowH []float64
	var size func(b *tbox, depth int)
	size = func(b *tbox, depth int) {
		b.depth = depth
		b.measure()
		if b.kind == "public" {
			b.h = barH
			if len(b.lines) > 1 {
				b.h = barH + lineH*float64(len(b.lines)-1)/2
			}
		}
		for len(rowH) <= depth {
			rowH = append(rowH, 0)
		}
		if b.h > rowH[depth] {
			rowH[depth] = b.h
		}
		sum := 0.0
		for i, c := range b.children {
			size(c, depth+1)
			if i > 0 {
				sum += hGap
			}
			sum += c.subW
		}
		b.subW = max(b.w, sum)
	}
	size(root, 0)
	rowY := make([]float64, len(rowH))
	y := svgMargin
	for d := range rowH {
		rowY[d] = y
		y += rowH[d] + vGap
	}
	height := y - vGap + svgMargin

	// Positions, top down.
	var place func(b *tbox, left float64)
	place = func(b *tbox, left float64) {
		b.x = left + (b.subW-b.w)/2
		b.y = rowY[b.depth]
		sum := 0.0
		for i, c := range b.children {
			if i > 0 {
				sum += hGap
			}
			sum += c.subW
		}
		l := left + (b.subW-sum)/2
		for _, c := range b.children {
			place(c, l)
			l += c.subW + hGap
		}
	}
	place(root, svgMargin)
	width := root.subW + 2*svgMargin
	// The public network spans the whole drawing.
	root.x, root.w = svgMargin, root.subW

	var sb strings.Builder
	e := template.HTMLEscapeString
	title := "Topology"
	if s.Name != "" {
		title = "Topology of " + s.Name
	}
	scale := pageScale
	if standalone {
		scale = 1
	}
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" class="topology" viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img" aria-labelledby="topo-title topo-desc">`,
		width, height, width*scale, height*scale)
	fmt.Fprintf(&sb, `<title id="topo-title">%s</title><desc id="topo-desc">%s</desc>`, e(title), e(describe(root)))
	if standalone {
		sb.WriteString("<style>" + svgStyle + "</style>")
	}

	// Links first, boxes over them.
	sb.WriteString(`<g class="links">`)
	var links func(b *tbox)
	links = func(b *tbox) {
		for _, c := range b.children {
			cx := c.x + c.w/2
			if b == root {
				fmt.Fprintf(&sb, `<path class="link" d="M%.1f %.1fV%.1f"/>`, cx, b.y+b.h, c.y)
			} else {
				px := b.x + b.w/2
				mid := rowY[b.depth] + rowH[b.depth] + vGap/2
				fmt.Fprintf(&sb, `<path class="link" d="M%.1f %.1fV%.1fH%.1fV%.1f"/>`, px, b.y+b.h, mid, cx, c.y)
			}
			links(c)
		}
	}
	links(root)
	sb.WriteString(`</g>`)

	var draw func(b *tbox)
	draw = func(b *tbox) {
		fmt.Fprintf(&sb, `<g class="node %s" data-name="%s">`, b.kind, e(b.node.Name))
		fmt.Fprintf(&sb, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" rx="8"/>`, b.x, b.y, b.w, b.h)
		if b.kind == "public" {
			// One line: "public network  203.0.113.1 ..." centred.
			cy := b.y + b.h/2
			if len(b.lines) == 1 {
				fmt.Fprintf(&sb, `<text class="name" x="%.1f" y="%.1f" text-anchor="middle" dominant-baseline="central">%s</text>`, b.x+b.w/2, cy, e(b.lines[0].text))
			} else {
				var addrs []string
				for _, l := range b.lines[1:] {
					addrs = append(addrs, l.text)
				}
				fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" text-anchor="middle" dominant-baseline="central"><tspan class="name">%s</tspan><tspan class="addr" dx="14">%s</tspan></text>`,
					b.x+b.w/2, cy, e(b.lines[0].text), e(strings.Join(addrs, "  ")))
			}
		} else {
			ty := b.y + boxPad*1.25
			for i, l := range b.lines {
				h := lineH
				if i == 0 {
					h = titleH
				}
				base := ty + h*0.72
				extra := ""
				if l.nat != "" {
					extra = fmt.Sprintf(` data-count-nat="%s"`, e(l.nat))
				}
				fmt.Fprintf(&sb, `<text class="%s" x="%.1f" y="%.1f"%s>%s</text>`, l.class, b.x+boxPad, base, extra, e(l.text))
				ty += h
			}
		}
		sb.WriteString(`</g>`)
		for _, c := range b.children {
			draw(c)
		}
	}
	draw(root)
	sb.WriteString(`</svg>`)
	return sb.String()
}

// describe says in words what the drawing shows, for screen readers.
func describe(root *tbox) string {
	var parts []string
	var walk func(b *tbox, under string)
	walk = func(b *tbox, under string) {
		if b != root {
			what := b.node.Name
			if b.kind == "nat" {
				what = "NAT " + what
			} else {
				what = "host " + what
			}
			if len(b.node.Addresses) > 0 {
				what += " (" + strings.Join(b.node.Addresses, ", ") + ")"
			}
			parts = append(parts, what+" on "+under)
			under = b.node.Name
		}
		for _, c := range b.children {
			walk(c, under)
		}
	}
	walk(root, "the public network")
	return strings.Join(parts, "; ") + "."
}

func countText(n int) string {
	if n == 1 {
		return "1 mapping"
	}
	return fmt.Sprintf("%d mappings", n)
}

// svgStyle styles /topology.svg on its own; the page's style sheet has
// the same rules.
const svgStyle = `.link{fill:none;stroke:#7b8794;stroke-width:2}` +
	`.node rect{stroke-width:2}` +
	`.public rect{fill:#e3eef8;stroke:#2f6690}` +
	`.nat rect{fill:#fdf1df;stroke:#a85d00}` +
	`.host rect{fill:#fff;stroke:#59636e}` +
	`text{font-family:system-ui,"DejaVu Sans",sans-serif;fill:#1b1f24}` +
	`.name{font-size:16px;font-weight:600}` +
	`.kind,.count{font-size:13px;fill:#7a4300}` +
	`.note{font-size:13px;fill:#59636e}` +
	`.addr{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:14px}`
