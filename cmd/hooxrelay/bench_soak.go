package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"
)

// soakSample is one reading of the relay process.
type soakSample struct {
	AtS        float64 `json:"at_s"` // since the load started; negative: before it
	RSS        int64   `json:"rss_bytes"`
	Anon       int64   `json:"rss_anon_bytes"`
	Goroutines int64   `json:"goroutines"`
	FDs        int     `json:"open_fds"` // files and sockets the process holds
	Pending    int64   `json:"pending"`
	StoreBytes int64   `json:"store_bytes"` // size of the store file
	Acked      int64   `json:"acked"`
}

// soakTrend compares the last third of the samples taken under load with
// the first third.
type soakTrend struct {
	First     float64 `json:"first"`
	Last      float64 `json:"last"`
	Max       float64 `json:"max"`
	ChangePct float64 `json:"change_pct"` // last third's mean on the first third's
	Verdict   string  `json:"verdict"`    // flat (within 10%), growing, shrinking or too few samples
}

// soakResult is the outcome of "bench soak".
type soakResult struct {
	Scenario   string       `json:"scenario"`
	Binary     string       `json:"relay_binary"`
	RatePerS   float64      `json:"rate_per_s"`
	Seconds    float64      `json:"duration_s"`
	EveryS     float64      `json:"every_s"`
	Acks       ackStats     `json:"acks"`
	Samples    []soakSample `json:"samples"`
	RSS        soakTrend    `json:"rss"`
	Anon       soakTrend    `json:"rss_anon"`
	Goroutines soakTrend    `json:"goroutines"`
	Delivery   drainResult  `json:"delivery"`
}

// soakFlags are the flags of "bench soak".
type soakFlags struct {
	rps      float64
	duration time.Duration
	interval time.Duration
	relayBin string
	wait     time.Duration
	dirFlag  string
	asJSON   bool
}

func newBenchSoakCmd(e *env) *cobra.Command {
	var o soakFlags
	cmd := &cobra.Command{
		Use:   "soak",
		Short: "a steady rate for a long time: the relay's RSS and goroutines, flat or growing",
		Long: `Runs the relay as a child process ("hooxrelay serve", embedded store) fanning
out to two local targets, and sends it --rate webhooks per second for
--duration (10 minutes by default: run it on demand, not in CI). Every
--every it samples the relay's resident memory (VmRSS, and RssAnon, from
/proc/PID/status), its goroutines (go_goroutines on /metrics), its open
files and sockets, its backlog and the size of its store file. The store file is memory-mapped, so VmRSS
also counts the pages of it that the relay touched and grows with the
store (events are kept for store.retention, 7 days by default); RssAnon is
the process's own memory.
It prints the samples, the first, last and largest of each, and a verdict:
"flat" when the mean of the last third of the samples is within 10% of the
first third's, else "growing" (or "shrinking"); then how many acked events
were lost (must be 0) or delivered twice.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBenchSoak(cmd.Context(), e, &o) },
	}
	f := cmd.Flags()
	f.Float64Var(&o.rps, "rate", 200, "webhooks per second")
	f.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to send")
	f.DurationVar(&o.interval, "every", 10*time.Second, "how often to sample the relay")
	f.StringVar(&o.relayBin, "relay-binary", "", "hooxrelay binary to run as the relay (default: this one)")
	f.DurationVar(&o.wait, "wait", 5*time.Minute, "longest wait for the deliveries after the load")
	f.StringVar(&o.dirFlag, "dir", "", "directory for the relay's store, config and logs (default: a temporary directory)")
	f.BoolVar(&o.asJSON, "json", false, "print the result as one JSON object")
	return cmd
}

func runBenchSoak(ctx context.Context, e *env, o *soakFlags) error {
	if o.rps <= 0 || o.duration <= 0 || o.interval <= 0 {
		return usagef("--rate, --duration and --every must be positive")
	}
	bin, err := relayBinary(o.relayBin)
	if err != nil {
		return err
	}
	dir, cleanup, err := benchDir(o.dirFlag)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	progress := e.stderr

	targets := []*benchTarget{newBenchTarget("first"), newBenchTarget("second")}
	for _, t := range targets {
		if err := t.start(ctx, &wg); err != nil {
			return err
		}
	}
	dbPath := filepath.Join(dir, "relay.db")
	child, err := newChildRelay(bin, dir, fmt.Sprintf("{path: %q}", dbPath),
		scenarioTarget{"first", targets[0].url(), ""}, scenarioTarget{"second", targets[1].url(), ""})
	if err != nil {
		return err
	}
	if err := child.start(ctx); err != nil {
		return err
	}
	defer child.kill()
	// A few connections, kept: the relay's goroutines then do not count
	// how many the bench happened to open.
	d, err := newPacedDriver(child.ingress, o.rps, 8)
	if err != nil {
		return err
	}
	res := soakResult{Scenario: "soak", Binary: bin, RatePerS: o.rps, Seconds: o.duration.Seconds(), EveryS: o.interval.Seconds()}

	var start time.Time
	sample := func() soakSample {
		s := soakSample{Acked: d.acks.Load()}
		if !start.IsZero() {
			s.AtS = time.Since(start).Seconds()
		}
		s.RSS, s.Anon = procStatus(strconv.Itoa(child.pid()))
		if fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", child.pid())); err == nil {
			s.FDs = len(fds)
		}
		if fi, err := os.Stat(dbPath); err == nil {
			s.StoreBytes = fi.Size()
		}
		if m, err := scrape(child.admin); err == nil {
			s.Goroutines = int64(metricSum(m, "go_goroutines"))
			s.Pending = int64(metricSum(m, "hooxrelay_queue_depth", "state", "pending"))
		}
		fmt.Fprintf(progress, "\rsoak: %s of %s, %d acked, RSS %.1f MiB, %d goroutines, %d pending   ",
			time.Duration(s.AtS*float64(time.Second)).Round(time.Second), o.duration, s.Acked, mib(s.RSS), s.Goroutines, s.Pending)
		return s
	}
	res.Samples = append(res.Samples, sample()) // idle, before the load
	sendCtx, stopSending := context.WithTimeout(ctx, o.duration)
	defer stopSending()
	start = time.Now()
	driven := make(chan struct{})
	go func() {
		defer close(driven)
		d.run(ctx, sendCtx)
	}()
	tick := time.NewTicker(o.interval)
	for done := false; !done; {
		select {
		case <-tick.C:
			res.Samples = append(res.Samples, sample())
		case <-sendCtx.Done():
			done = true
		}
	}
	tick.Stop()
	<-driven
	res.Samples = append(res.Samples, sample()) // at the end of the load
	fmt.Fprintln(progress)
	loadEnd := time.Now()
	res.Acks = d.stats()
	res.Delivery = waitDelivered(ctx, targets, d.ackedIDs(), loadEnd, o.wait, progress, "soak")
	if err := child.stop(); err != nil {
		return err
	}
	load := res.Samples[1:]
	res.RSS = trend(load, func(s soakSample) float64 { return float64(s.RSS) })
	res.Anon = trend(load, func(s soakSample) float64 { return float64(s.Anon) })
	res.Goroutines = trend(load, func(s soakSample) float64 { return float64(s.Goroutines) })
	return report(e, o.asJSON, res, res.Delivery)
}

// trend compares the mean of the last third of the samples with the
// first third's.
func trend(samples []soakSample, v func(soakSample) float64) soakTrend {
	var t soakTrend
	if len(samples) == 0 {
		t.Verdict = "too few samples"
		return t
	}
	t.First, t.Last = v(samples[0]), v(samples[len(samples)-1])
	for _, s := range samples {
		t.Max = max(t.Max, v(s))
	}
	third := len(samples) / 3
	if third < 1 {
		t.Verdict = "too few samples"
		return t
	}
	mean := func(ss []soakSample) float64 {
		var sum float64
		for _, s := range ss {
			sum += v(s)
		}
		return sum / float64(len(ss))
	}
	first, last := mean(samples[:third]), mean(samples[len(samples)-third:])
	if first > 0 {
		t.ChangePct = 100 * (last - first) / first
	}
	switch {
	case t.ChangePct > 10:
		t.Verdict = "growing"
	case t.ChangePct < -10:
		t.Verdict = "shrinking"
	default:
		t.Verdict = "flat"
	}
	return t
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func (r soakResult) table(w io.Writer) {
	fmt.Fprintf(w, "soak: %g webhooks/s for %gs to a relay process (embedded store) fanning out to 2 targets; sampled every %gs\n\n", r.RatePerS, r.Seconds, r.EveryS)
	fmt.Fprintf(w, "%8s %9s %9s %11s %5s %8s %8s %10s\n", "at", "RSS MiB", "anon MiB", "goroutines", "fds", "pending", "acked", "store MiB")
	for i, s := range r.Samples {
		at := fmt.Sprintf("%.0fs", s.AtS)
		if i == 0 {
			at = "idle"
		}
		fmt.Fprintf(w, "%8s %9.1f %9.1f %11d %5d %8d %8d %10.1f\n", at, mib(s.RSS), mib(s.Anon), s.Goroutines, s.FDs, s.Pending, s.Acked, mib(s.StoreBytes))
	}
	fmt.Fprintln(w)
	for _, t := range []struct {
		name string
		t    soakTrend
		f    func(float64) string
	}{
		{"RSS", r.RSS, func(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }},
		{"anon", r.Anon, func(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }},
		{"goroutines", r.Goroutines, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
	} {
		fmt.Fprintf(w, "%-11s first %s, last %s, max %s: %s (last third %+.1f%% on the first)\n", t.name, t.f(t.t.First), t.f(t.t.Last), t.f(t.t.Max), t.t.Verdict, t.t.ChangePct)
	}
	if last := r.Samples[len(r.Samples)-1]; r.RSS.Verdict != r.Anon.Verdict {
		fmt.Fprintf(w, "file-backed %.1f MiB of the RSS at the end (RSS - anon: the pages of the binary and of the mapped store file, now %.1f MiB)\n", mib(last.RSS-last.Anon), mib(last.StoreBytes))
	}
	a := r.Acks
	fmt.Fprintf(w, "acked       %d of %d sent (%.0f/s); p50 %.1f ms, p99 %.1f ms\n", a.Acked, a.Sent, float64(a.Acked)/r.Seconds, a.P50ms, a.P99ms)
	fmt.Fprintf(w, "lost        %d\nduplicated  %d\ndrain       %.1fs after the load ended\n", r.Delivery.Lost, r.Delivery.Dups, r.Delivery.DrainSec)
}
