package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hooxrelay/hooxrelay/internal/bench"
	"github.com/hooxrelay/hooxrelay/internal/testenv"
	"github.com/hooxrelay/hooxrelay/relay/redisstore/redistest"
)

// benchJSON runs "hooxrelay bench ARGS --json" in this process and decodes
// its one JSON object into v.
func benchJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	args = append(append([]string{"bench"}, args...), "--json")
	out, stderr, code := runCmd(t, "", args...)
	if code != 0 {
		t.Fatalf("hooxrelay %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, stderr)
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(v); err != nil {
		t.Fatalf("hooxrelay %s printed no JSON object: %v\n%s", strings.Join(args, " "), err, out)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Errorf("hooxrelay %s printed more than one JSON object:\n%s", strings.Join(args, " "), out)
	}
	t.Logf("hooxrelay %s:\n%s", strings.Join(args, " "), out)
}

func TestBenchBurst(t *testing.T) {
	svg := filepath.Join(t.TempDir(), "burst.svg")
	var r bench.BurstResult
	benchJSON(t, &r, "burst", "--events", "600", "--rate", "200", "--svg", svg, "--wait", "60s")
	if r.Acks.Acked != 600 || r.Acks.Unacked != 0 {
		t.Errorf("acked %d, not acked %d; want all 600 acked", r.Acks.Acked, r.Acks.Unacked)
	}
	if r.Delivery.Lost != 0 || r.Delivery.Dups != 0 || !r.Delivery.Drained {
		t.Errorf("lost %d, duplicated %d, drained %v; want 0, 0, true", r.Delivery.Lost, r.Delivery.Dups, r.Delivery.Drained)
	}
	// Over the limit is a bug at any load. Under it is what a shared
	// 2-core machine does to a timed run (160/s was seen while other tests
	// ran), so only a limiter off by far more than that fails.
	if r.DeliveryRate > 220 || r.DeliveryRate < 100 {
		t.Errorf("delivery rate over the steady part %.1f/s; want at most 10%% over the limit of 200/s, and at least half of it", r.DeliveryRate)
	}
	if n := len(r.Series.AcksPerS); n < 10 || len(r.Series.DeliveriesPS) != n || len(r.Series.AckP99ms) != n {
		t.Errorf("series of %d, %d and %d buckets; want the same number, at least 10 (3s by 100ms)", n, len(r.Series.DeliveriesPS), len(r.Series.AckP99ms))
	}
	var sum float64
	for _, v := range r.Series.DeliveriesPS {
		sum += v * float64(r.Series.BucketMS) / 1000
	}
	if math.Round(sum) != 600 {
		t.Errorf("the series counts %.0f deliveries, want 600", sum)
	}

	// The plot: well-formed XML, an outer <svg> holding two panels, each
	// with polylines.
	f, err := os.Open(svg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := xml.NewDecoder(f)
	depth, panels, polylines := 0, 0, map[int]int{}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s is not well-formed XML: %v", svg, err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			depth++
			if el.Name.Local == "svg" && depth == 2 {
				panels++
			}
			if el.Name.Local == "polyline" {
				polylines[panels]++
			}
		case xml.EndElement:
			depth--
		}
	}
	if panels != 2 || polylines[1] < 3 || polylines[2] < 2 || polylines[0] != 0 {
		t.Errorf("plot has %d panels with %v polylines; want 2 panels, ≥3 lines in the first and ≥2 in the second", panels, polylines)
	}
}

func TestBenchDeadTarget(t *testing.T) {
	for _, as := range []string{"503", "refused"} {
		t.Run(as, func(t *testing.T) {
			var r bench.DeadTargetResult
			benchJSON(t, &r, "dead-target", "--down", "2s", "--as", as, "--open-timeout", "500ms", "--rate", "100", "--wait", "60s")
			if r.Delivery.Lost != 0 || !r.Delivery.Drained {
				t.Errorf("lost %d, drained %v; want 0 and true", r.Delivery.Lost, r.Delivery.Drained)
			}
			if r.BreakerOpens < 1 {
				t.Errorf("breaker opened %d times; want at least once in 2s down", r.BreakerOpens)
			}
			// Once open, the breaker lets one probe through per open
			// timeout (4 in 2s); the attempts already in flight (at most
			// 16) end too.
			if after := r.AttemptsWhileDown - r.AttemptsBeforeOpen; r.AttemptsWhileDown == 0 || after > 16+4+4 {
				t.Errorf("%d attempts while down, %d after the breaker opened; want some, and few after it opened", r.AttemptsWhileDown, after)
			}
			if as == "503" && r.TargetSawWhileDown == 0 {
				t.Errorf("the target saw no request while down")
			}
			if r.BacklogAtRecovery <= 0 {
				t.Errorf("backlog at recovery %d; want the events of the outage", r.BacklogAtRecovery)
			}
		})
	}
}

func TestBenchCrash(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testBenchCrash(t) })
	t.Run("redis", func(t *testing.T) {
		testBenchCrash(t, "--redis", "redis://"+redistest.Start(t, true).Addr+"/0")
	})
}

func testBenchCrash(t *testing.T, extra ...string) {
	var r bench.CrashResult
	benchJSON(t, &r, append([]string{"crash", "--relay-binary", binary, "--duration", "3s", "--rate", "200", "--wait", "60s"}, extra...)...)
	if r.Acks.Acked < 100 || r.Acks.Unacked != 0 {
		t.Errorf("acked %d, not acked %d; want a few hundred acked and none given up", r.Acks.Acked, r.Acks.Unacked)
	}
	if len(r.RestartS) != 1 || len(r.AckedAtKill) != 1 || r.AckedAtKill[0] == 0 {
		t.Errorf("kills: acked at each %v, restarts %v; want one kill under load", r.AckedAtKill, r.RestartS)
	}
	if r.Delivery.Lost != 0 || !r.Delivery.Drained || len(r.Delivery.Targets) != 2 {
		t.Errorf("lost %d, drained %v over %d targets; want 0, true, 2", r.Delivery.Lost, r.Delivery.Drained, len(r.Delivery.Targets))
	}
}

func TestBenchRedisOutage(t *testing.T) {
	testenv.LookPath(t, "redis-server", testenv.InstallRedis)
	var r bench.RedisOutageResult
	benchJSON(t, &r, "redis-outage", "--down", "2s", "--before", "1s", "--after", "2s", "--lease", "2s", "--rate", "100", "--wait", "60s")
	if r.Delivery.Lost != 0 || !r.Delivery.Drained {
		t.Errorf("lost %d, drained %v; want 0 and true", r.Delivery.Lost, r.Delivery.Drained)
	}
	if r.Answers == 0 || r.ReadyDown != 503 {
		t.Errorf("%d answers 503 while Redis was down, /readyz %d; want some 503s, and 503", r.Answers, r.ReadyDown)
	}
	if r.FirstAckS == nil || r.Acks.Unacked != 0 {
		t.Errorf("first ack after the restart %v, not acked %d; want acks again and nothing given up", r.FirstAckS, r.Acks.Unacked)
	}
}

func TestBenchSoak(t *testing.T) {
	var r bench.SoakResult
	benchJSON(t, &r, "soak", "--relay-binary", binary, "--duration", "3s", "--every", "1s", "--rate", "50", "--wait", "60s")
	if len(r.Samples) < 4 {
		t.Fatalf("%d samples; want the idle one, one a second and one at the end", len(r.Samples))
	}
	for i, s := range r.Samples {
		if s.RSS <= 0 || s.Goroutines <= 0 {
			t.Errorf("sample %d: RSS %d, goroutines %d; want both read from the relay process", i, s.RSS, s.Goroutines)
		}
	}
	if r.RSS.Verdict == "" || r.Goroutines.Verdict == "" {
		t.Errorf("verdicts %q and %q; want flat, growing, shrinking or too few samples", r.RSS.Verdict, r.Goroutines.Verdict)
	}
	if r.Delivery.Lost != 0 || r.Acks.Acked < 100 {
		t.Errorf("lost %d of %d acked; want 0 of about 150", r.Delivery.Lost, r.Acks.Acked)
	}
}

func TestBenchHelpAndUsage(t *testing.T) {
	out, _, code := runCmd(t, "", "bench", "--help")
	if code != 0 {
		t.Fatalf("bench --help: exit %d", code)
	}
	for _, s := range []string{"load", "burst", "dead-target", "crash", "redis-outage", "soak"} {
		if !strings.Contains(out, "  "+s+" ") {
			t.Errorf("bench --help does not list %q:\n%s", s, out)
		}
	}
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"bench", "nope"}, `unknown scenario "nope"`},
		{[]string{"bench", "dead-target", "--as", "timeout"}, `--as "timeout"`},
		{[]string{"bench", "burst", "--events", "0"}, "must be positive"},
	} {
		_, stderr, code := runCmd(t, "", tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.msg) {
			t.Errorf("hooxrelay %q: exit %d, stderr %q; want exit 2 and %q", tc.args, code, stderr, tc.msg)
		}
	}
}

// bench sustain --reference runs the same steps against the reference
// forwarder, here as a process of its own, before the relay's, and it
// loses nothing either.
func TestBenchSustainReference(t *testing.T) {
	var r bench.SustainResult
	benchJSON(t, &r, "sustain", "--reference", "--process", "--relay-binary", binary, "--baseline", "500ms",
		"--step-duration", "1s", "--from", "0.01", "--to", "0.01", "--p99", "5s", "--wait", "60s")
	ref := r.Reference
	if ref == nil || len(ref.Steps) != 1 || len(r.Steps) != 1 {
		t.Fatalf("reference %+v, %d relay steps; want a reference ladder of one step and one relay step", ref, len(r.Steps))
	}
	if st := ref.Steps[0]; st.Sent == 0 || st.Acked != st.Sent || st.Ratio != 0.01 {
		t.Errorf("reference step: %d sent, %d acked at %.2f; want every webhook acked at 0.01", st.Sent, st.Acked, st.Ratio)
	}
	if d := ref.Delivery; d.Lost != 0 || d.Dups != 0 || !d.Drained || len(d.Targets) != 2 {
		t.Errorf("reference: lost %d, duplicated %d, drained %v over %d targets; want 0, 0, true, 2", d.Lost, d.Dups, d.Drained, len(d.Targets))
	}
	if ref.Baseline.ReqPerSec != r.Baseline.ReqPerSec || !strings.Contains(ref.Store, "reference") {
		t.Errorf("reference: baseline %.0f req/s, store %q; want the relay's baseline (%.0f) and a store naming the reference", ref.Baseline.ReqPerSec, ref.Store, r.Baseline.ReqPerSec)
	}
	// Both ran as processes of their own: each step counts their CPU
	// apart from this process's, until every delivery was made.
	for name, st := range map[string]bench.SustainStep{"reference": ref.Steps[0], "relay": r.Steps[0]} {
		if c := st.CPU; c.RelayUS <= 0 || c.BenchUS <= 0 || c.Busy <= 0 || c.Busy > 1 || c.Partial {
			t.Errorf("%s step CPU %+v; want the server's and this process's µs per webhook, a busy share in (0, 1], nothing left out", name, c)
		}
	}
	switch {
	case ref.BestPerS == 0 && r.RelayOverReference != nil:
		t.Errorf("relay/reference %v with no passing reference step; want none", *r.RelayOverReference)
	case ref.BestPerS > 0 && (r.RelayOverReference == nil || math.Abs(*r.RelayOverReference-r.BestPerS/ref.BestPerS) > 1e-9):
		t.Errorf("relay/reference %v; want %v", r.RelayOverReference, r.BestPerS/ref.BestPerS)
	}
}
