package relay

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestLimiterKey(t *testing.T) {
	for _, tc := range []struct{ ip, want string }{
		{"192.0.2.7", "192.0.2.7/32"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"},
	} {
		if got := limiterKey(netip.MustParseAddr(tc.ip)); got.String() != tc.want {
			t.Errorf("limiterKey(%s) = %s, want %s", tc.ip, got, tc.want)
		}
	}
	if got := limiterKey(netip.Addr{}); got.IsValid() {
		t.Errorf("limiterKey(invalid) = %s, want the zero Prefix", got)
	}
}

// The per-IP limiters of a source never outgrow maxLimiters, however many
// addresses send, and a known address keeps its bucket while it fits.
func TestIPLimitersAreBounded(t *testing.T) {
	l := &ipLimiters{rps: rate.Limit(1), burst: 1, m: map[netip.Prefix]*rate.Limiter{}}
	now := time.Now()
	first := limiterKey(netip.MustParseAddr("192.0.2.1"))
	if ok, _ := l.allow(first, now); !ok {
		t.Fatal("first request of an address refused")
	}
	if ok, wait := l.allow(first, now); ok || wait <= 0 {
		t.Errorf("second request at once with burst 1: allowed %v, wait %v; want refused with a wait", ok, wait)
	}
	for i := range 3 * maxLimiters {
		l.allow(limiterKey(netip.AddrFrom4([4]byte{10, 0, byte(i / 256), byte(i % 256)})), now)
		if len(l.m) > maxLimiters {
			t.Fatalf("after %d addresses, %d limiters kept, want at most %d", i+1, len(l.m), maxLimiters)
		}
	}
}
