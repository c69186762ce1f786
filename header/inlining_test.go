package header

import (
	"os/exec"
	"regexp"
	"testing"

	"github.com/gonat/gonat/internal/privtest"
)

// TestInlining fails if a hot accessor stops being inlinable, which would
// cost a call per field per packet.
func TestInlining(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package")
	}
	gotool := privtest.Tool(t, "go")
	out, err := exec.Command(gotool, "build", "-gcflags=-m", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build -gcflags=-m: %v\n%s", err, out)
	}
	want := []string{
		"IPv4.HeaderLen", "IPv4.TotalLen", "IPv4.Protocol", "IPv4.TTL", "IPv4.Src", "IPv4.Dst",
		"IPv4.Checksum", "IPv4.SetChecksum", "IPv4.FragmentOffset", "IPv4.Payload",
		"IPv4.Version", "IPv4.TOS", "IPv4.IsFragment", "TCP.SetSeq", "TCP.SetFlags",
		"UDP.SrcPort", "UDP.DstPort", "UDP.Checksum", "UDP.SetChecksum",
		"TCP.SrcPort", "TCP.DstPort", "TCP.Flags", "TCP.DataOffset", "TCP.Checksum", "TCP.SetChecksum",
		"ICMPv4.Type", "ICMPv4.Ident", "ICMPv4.Checksum", "ICMPv4.SetChecksum",
		"(*Parsed).HasPorts", "(*Parsed).IsFragment", "(*Parsed).IsFirstFragment",
		"IsICMPError", "IsICMPQuery", "Status.String",
		"Fold", "UpdateChecksum16", "delta16", "delta32", "applyDelta", "put16", "udpChecksumFix",
		"IPv6.Version", "IPv6.TrafficClass", "IPv6.FlowLabel", "IPv6.PayloadLen", "IPv6.NextHeader",
		"IPv6.HopLimit", "IPv6.Src", "IPv6.Dst", "IPv6.SrcBytes", "IPv6.DstBytes", "IPv6.Payload",
		"IPv6.SetHopLimit", "IPv6.DecHopLimit", "IPv6.SetPayloadLen",
		"IPv6Fragment.NextHeader", "IPv6Fragment.Offset", "IPv6Fragment.More", "IPv6Fragment.Ident",
		"ICMPv6.Type", "ICMPv6.Code", "ICMPv6.Checksum", "ICMPv6.SetChecksum", "ICMPv6.Ident", "ICMPv6.MTU",
		"IsICMPv6Error", "IsICMPv6Query",
		"(*ParsedV6).HasPorts", "(*ParsedV6).IsFragment", "(*ParsedV6).IsFirstFragment",
	}
	for _, fn := range want {
		re := regexp.MustCompile(`(?m): can inline ` + regexp.QuoteMeta(fn) + `$`)
		if !re.Match(out) {
			t.Errorf("%s is not inlinable", fn)
		}
	}
}
