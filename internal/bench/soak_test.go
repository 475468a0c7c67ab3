package bench

import "testing"

func TestSoakTrend(t *testing.T) {
	mk := func(vs ...float64) []SoakSample {
		var ss []SoakSample
		for _, v := range vs {
			ss = append(ss, SoakSample{RSS: int64(v)})
		}
		return ss
	}
	rss := func(s SoakSample) float64 { return float64(s.RSS) }
	for _, tc := range []struct {
		name    string
		samples []SoakSample
		want    string
	}{
		{"flat", mk(100, 104, 98, 101, 103, 99, 105, 102, 100), "flat"},
		{"growing", mk(100, 100, 100, 110, 115, 120, 125, 130, 140), "growing"},
		{"shrinking", mk(200, 200, 200, 150, 150, 150, 100, 100, 100), "shrinking"},
		{"two samples", mk(100, 500), "too few samples"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := trend(tc.samples, rss); got.Verdict != tc.want {
				t.Errorf("trend(%v) = %+v, want %q", tc.samples, got, tc.want)
			}
		})
	}
}
