package relay

import "testing"

func TestClaimSize(t *testing.T) {
	for _, tc := range []struct {
		name string
		l    claimLimits
		want int
	}{
		{"every free slot", claimLimits{free: 16}, 16},
		{"one free slot", claimLimits{free: 1}, 1},
		{"half-open: one probe", claimLimits{free: 16, probe: true}, 1},
		{"yielding to a burst", claimLimits{free: 16, yield: true}, burstClaim},
		{"yielding with fewer slots than the burst claim", claimLimits{free: 1, yield: true}, 1},
		{"own limiter with tokens to spare", claimLimits{free: 4, limited: true, tokens: 10}, 4},
		{"own limiter short of tokens", claimLimits{free: 16, limited: true, tokens: 3}, 3},
		{"own limiter empty: one, to wait for", claimLimits{free: 16, limited: true, tokens: 0}, 1},
		{"own limiter in debt: one, to wait for", claimLimits{free: 16, limited: true, tokens: -3}, 1},
		{"shared limit: at most its burst", claimLimits{free: 16, shared: 5}, 5},
		{"shared limit above the free slots", claimLimits{free: 2, shared: 5}, 2},
		{"probe under a limiter", claimLimits{free: 16, probe: true, limited: true, tokens: 8}, 1},
		{"yielding under a short limiter", claimLimits{free: 16, yield: true, limited: true, tokens: 1}, 1},
		{"own limiter wins over a shared one", claimLimits{free: 16, limited: true, tokens: 7, shared: 2}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := claimSize(tc.l); got != tc.want {
				t.Errorf("claimSize(%+v) = %d, want %d", tc.l, got, tc.want)
			}
		})
	}
}
