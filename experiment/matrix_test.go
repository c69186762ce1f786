package experiment

import "testing"

// The classic table (UDP, no port prediction), the same for RFC 8445
// agents and permissive peers: full cone
// connects with every type; restricted cone with restricted,
// port-restricted and symmetric; port-restricted with port-restricted;
// symmetric with symmetric or port-restricted fails.
func TestExpectedClassicTable(t *testing.T) {
	want := map[[2]string]bool{
		{"full-cone", "full-cone"}: true, {"full-cone", "restricted-cone"}: true,
		{"full-cone", "port-restricted-cone"}: true, {"full-cone", "symmetric"}: true,
		{"restricted-cone", "restricted-cone"}: true, {"restricted-cone", "port-restricted-cone"}: true,
		{"restricted-cone", "symmetric"}: true, {"port-restricted-cone", "port-restricted-cone"}: true,
		{"port-restricted-cone", "symmetric"}: false, {"symmetric", "symmetric"}: false,
	}
	types := ClassicTypes()
	for i, a := range types {
		for _, b := range types[i:] {
			w, ok := want[[2]string{a.Name, b.Name}]
			if !ok {
				t.Fatalf("no expectation for %s x %s", a.Name, b.Name)
			}
			for _, permissive := range []bool{false, true} {
				if got := Expected(a, b, permissive); got != w {
					t.Errorf("%s x %s: Expected(permissive=%v) = %v, want %v", a.Name, b.Name, permissive, got, w)
				}
			}
			if Expected(a, b, true) != Expected(b, a, true) {
				t.Errorf("%s x %s: not symmetric", a.Name, b.Name)
			}
		}
	}
}

func TestAllCombinationsNamed(t *testing.T) {
	c := AllCombinations()
	if len(c) != 9 || c[0].Name != "eim/eif" || c[8].Name != "apdm/apdf" {
		t.Fatalf("%d combinations: %v .. %v", len(c), c[0].Name, c[len(c)-1].Name)
	}
}
