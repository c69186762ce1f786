package main

import (
	"fmt"
	"strings"
	"testing"
)

// --primary and --alternate pair by family: IPv4, IPv6 or both, in any
// order, repeated or comma-separated; anything else names what is wrong.
func TestServerPairs(t *testing.T) {
	for _, tc := range []struct {
		primary, alternate []string
		want               string // the pairs, or the start of the error
	}{
		{[]string{"203.0.113.1"}, []string{"203.0.113.2"}, "[[203.0.113.1 203.0.113.2]]"},
		{[]string{"2001:db8::1"}, []string{"2001:db8::2"}, "[[2001:db8::1 2001:db8::2]]"},
		{[]string{"2001:db8::1", "203.0.113.1"}, []string{"203.0.113.2,2001:db8::2"}, "[[203.0.113.1 203.0.113.2] [2001:db8::1 2001:db8::2]]"},
		{nil, []string{"203.0.113.2"}, "--primary: required"},
		{[]string{"203.0.113.1"}, nil, "--alternate: required"},
		{[]string{"203.0.113.1", "2001:db8::1"}, []string{"203.0.113.2"}, "--primary 2001:db8::1: give --alternate a second IPv6"},
		{[]string{"203.0.113.1"}, []string{"203.0.113.2", "2001:db8::2"}, "--alternate 2001:db8::2: give --primary an IPv6"},
		{[]string{"203.0.113.1", "203.0.113.3"}, []string{"203.0.113.2"}, "--primary: two IPv4 addresses"},
		{[]string{"2001:db8::1"}, []string{"2001:db8::1"}, "--alternate 2001:db8::1: want a second"},
		{[]string{"stun"}, []string{"203.0.113.2"}, `--primary "stun": want an IP address`},
	} {
		pairs, err := serverPairs(tc.primary, tc.alternate)
		got := fmt.Sprint(pairs)
		if err != nil {
			got = err.Error()
		}
		if !strings.HasPrefix(got, tc.want) {
			t.Errorf("--primary %v --alternate %v: %s, want %s", tc.primary, tc.alternate, got, tc.want)
		}
	}
}
