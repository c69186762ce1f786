package main

import (
	"strings"
	"testing"
)

// --web and --metrics listen beyond loopback only with --expose.
func TestCheckExposure(t *testing.T) {
	for _, c := range []struct {
		addr     string
		loopback bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.1:0", true},
		{"127.1.2.3:80", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{":8080", false},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"192.0.2.7:8080", false},
		{"example.org:8080", false},
		{"127.0.0.1", false}, // no port: not an address net.Listen takes
	} {
		if got := isLoopback(c.addr); got != c.loopback {
			t.Errorf("isLoopback(%q) = %v, want %v", c.addr, got, c.loopback)
		}
		for _, flag := range []string{"--web", "--metrics"} {
			web, metrics := c.addr, ""
			if flag == "--metrics" {
				web, metrics = "", c.addr
			}
			err := checkExposure(web, metrics, false, 1)
			if c.loopback != (err == nil) {
				t.Errorf("%s %s: %v", flag, c.addr, err)
			}
			if err != nil && (!strings.Contains(err.Error(), flag+" "+c.addr) || !strings.Contains(err.Error(), "--expose")) {
				t.Errorf("%s %s: %q does not name the flag and --expose", flag, c.addr, err)
			}
			if err := checkExposure(web, metrics, true, 1); err != nil {
				t.Errorf("%s %s --expose: %v", flag, c.addr, err)
			}
		}
	}
	if err := checkExposure("", "", false, 64); err != nil {
		t.Errorf("neither flag: %v", err)
	}
	if err := checkExposure("127.0.0.1:0", "", false, 0); err == nil || !strings.Contains(err.Error(), "--web-streams") {
		t.Errorf("--web-streams 0: %v", err)
	}
}
