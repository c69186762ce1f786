package nat

import "testing"

// Every verdict has a name (counters, DROP reasons) and a meaning (the
// web view's legend): a new verdict without them fails here.
func TestVerdictsNamedAndExplained(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range Verdicts() {
		if v.String() == "" || v.Meaning() == "" {
			t.Errorf("verdict %d: name %q, meaning %q", v, v, v.Meaning())
		}
		if seen[v.String()] {
			t.Errorf("two verdicts named %q", v)
		}
		seen[v.String()] = true
	}
}
