package relay

import (
	"fmt"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestLimiterKey(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
		{"::ffff:192.0.2.7", "::ffff:192.0.2.7"},
		{"not an ip", "not an ip"},
	} {
		if got := limiterKey(tc.ip); got != tc.want {
			t.Errorf("limiterKey(%q) = %q, want %q", tc.ip, got, tc.want)
		}
	}
}

// The per-IP limiters of a source never outgrow maxLimiters, however many
// addresses send, and a known address keeps its bucket while it fits.
func TestIPLimitersAreBounded(t *testing.T) {
	l := &ipLimiters{rps: rate.Limit(1), burst: 1, m: map[string]*rate.Limiter{}}
	now := time.Now()
	if ok, _ := l.allow("first", now); !ok {
		t.Fatal("first request of an address refused")
	}
	if ok, wait := l.allow("first", now); ok || wait <= 0 {
		t.Errorf("second request at once with burst 1: allowed %v, wait %v; want refused with a wait", ok, wait)
	}
	for i := range 3 * maxLimiters {
		l.allow(fmt.Sprint("10.0.", i/256, ".", i%256), now)
		if len(l.m) > maxLimiters {
			t.Fatalf("after %d addresses, %d limiters kept, want at most %d", i+1, len(l.m), maxLimiters)
		}
	}
}
