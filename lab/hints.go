package lab

// "Did you mean": the known word closest to a misspelt key or name.

import (
	"fmt"
	"strings"
)

// keyAliases are words people reach for instead of a known key, per table.
var keyAliases = map[string]map[string]string{
	"": {"lab": keyName, "nats": keyNAT, "hosts": keyHost},
	keyNAT: {
		"type": keyPreset, "kind": keyPreset, "nat-type": keyPreset, "behavior": keyPreset, "behaviour": keyPreset,
		"parent": keyUpstream, "outside": keyUpstream, "via": keyUpstream, "behind": keyUpstream, "network": keyUpstream,
		"public": keyExternal, "address": keyExternal, "addresses": keyExternal, "externals": keyExternal,
		"subnet": keyInside, "lan": keyInside, "prefix": keyInside, "internal": keyInside, "private": keyInside,
	},
	keyHost: {
		"ip": keyAddress, "ips": keyAddress, "addr": keyAddress, "addresses": keyAddress,
		"nat": keyNetwork, "behind": keyNetwork, "subnet": keyNetwork, "upstream": keyNetwork,
		"command": keyRun, "cmd": keyRun, "exec": keyRun, "args": keyRun,
		"wait": keyReady, "wait-for": keyReady, "readiness": keyReady, "healthcheck": keyReady,
	},
}

// didYouMean returns `; did you mean "x"?` for the known word closest to
// s (through aliases, a prefix, or an edit distance of at most 2), or "".
func didYouMean(s string, known []string, aliases map[string]string) string {
	norm := strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), "_", "-"))
	if a, ok := aliases[norm]; ok {
		return fmt.Sprintf("; did you mean %q?", a)
	}
	best, bestD := "", 3
	for _, k := range known {
		d := editDistance(norm, k, bestD)
		if len(norm) >= 4 && len(k) >= 4 && (strings.HasPrefix(norm, k) || strings.HasPrefix(k, norm)) && d > 1 {
			d = 1
		}
		if d < bestD && d < len(k) {
			best, bestD = k, d
		}
	}
	if best == "" || best == s {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance of a and b, or limit when it
// is at least limit.
func editDistance(a, b string, limit int) int {
	if len(a) > 64 || len(b) > 64 {
		return limit
	}
	d := len(a) - len(b)
	if d < 0 {
		d = -d
	}
	if d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}
