package lab

import (
	"testing"
)

func TestParseKeyPositions(t *testing.T) {
	text := `# comment [[nat]]
name = "x" # [[host]]
[[nat]]
  "name" = 'n' # quoted key
external = ["198.51.100.1",
  "198.51.100.2"]
inside = """
multi
"""
[[ nat ]]
name = "m"
'udp-timeout' = "1s"
[nat.sub]
x = 1
[[host]]
name = "h"
`
	ps := scanPositions([]byte(text))
	if ps.top["name"] != 2 || ps.section("nat", 0) != 3 || ps.section("nat", 1) != 10 || ps.section("host", 0) != 15 {
		t.Errorf("sections: top %v nat %v host %v", ps.top, ps.arrays["nat"], ps.arrays["host"])
	}
	for _, c := range []struct {
		arr  string
		i    int
		key  string
		line int
	}{
		{"nat", 0, "name", 4}, {"nat", 0, "external", 5}, {"nat", 0, "inside", 7},
		{"nat", 1, "name", 11}, {"nat", 1, "udp-timeout", 12}, {"nat", 1, "sub", 13}, {"nat", 1, "x", 10},
		{"nat", 5, "name", 3}, {"host", 0, "name", 16},
	} {
		if got := ps.key(c.arr, c.i, c.key); got != c.line {
			t.Errorf("%s[%d].%s: line %d, want %d", c.arr, c.i, c.key, got, c.line)
		}
	}
}
