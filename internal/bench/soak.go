package bench

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/pflag"
)

var soak = &Scenario{
	Name:  "soak",
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
	Flags: func(f *pflag.FlagSet) func(context.Context, *Env) error {
		o := &soakFlags{}
		f.Float64Var(&o.rps, "rate", 200, "webhooks per second")
		f.DurationVar(&o.duration, "duration", 10*time.Minute, "how long to send")
		f.DurationVar(&o.interval, "every", 10*time.Second, "how often to sample the relay")
		f.StringVar(&o.relayBin, "relay-binary", "", "hooxrelay binary to run as the relay (default: this one)")
		waitFlag(f, &o.wait, "the load")
		dirFlag(f, &o.dir, "the relay's store, config and logs")
		jsonFlag(f, &o.asJSON)
		return o.run
	},
}

// SoakSample is one reading of the relay process.
type SoakSample struct {
	AtS        float64 `json:"at_s"` // since the load started; negative: before it
	RSS        int64   `json:"rss_bytes"`
	Anon       int64   `json:"rss_anon_bytes"`
	Goroutines int64   `json:"goroutines"`
	FDs        int     `json:"open_fds"` // files and sockets the process holds
	Pending    int64   `json:"pending"`
	StoreBytes int64   `json:"store_bytes"` // size of the store directory
	Acked      int64   `json:"acked"`
}

// SoakTrend compares the last third of the samples taken under load with
// the first third.
type SoakTrend struct {
	First     float64 `json:"first"`
	Last      float64 `json:"last"`
	Max       float64 `json:"max"`
	ChangePct float64 `json:"change_pct"` // last third's mean on the first third's
	Verdict   string  `json:"verdict"`    // flat (within 10%), growing, shrinking or too few samples
}

// SoakResult is the outcome of "bench soak".
type SoakResult struct {
	Scenario   string       `json:"scenario"`
	Binary     string       `json:"relay_binary"`
	RatePerS   float64      `json:"rate_per_s"`
	Seconds    float64      `json:"duration_s"`
	EveryS     float64      `json:"every_s"`
	Acks       AckStats     `json:"acks"`
	Samples    []SoakSample `json:"samples"`
	RSS        SoakTrend    `json:"rss"`
	Anon       SoakTrend    `json:"rss_anon"`
	Goroutines SoakTrend    `json:"goroutines"`
	Delivery   Drain        `json:"delivery"`
}

// soakFlags are the flags of "bench soak".
type soakFlags struct {
	rps      float64
	duration time.Duration
	interval time.Duration
	relayBin string
	wait     time.Duration
	dir      string
	asJSON   bool
}

func (o *soakFlags) run(ctx context.Context, env *Env) error {
	if o.rps <= 0 || o.duration <= 0 || o.interval <= 0 {
		return usagef("--rate, --duration and --every must be positive")
	}
	bin, err := relayBinary(o.relayBin)
	if err != nil {
		return err
	}
	r, err := newRun(ctx, env, "soak", o.dir)
	if err != nil {
		return err
	}
	defer r.close()
	targets := []*target{{name: "first"}, {name: "second"}}
	if err := r.start(targets...); err != nil {
		return err
	}
	dbPath := filepath.Join(r.dir, "relay")
	child, err := r.child(bin, fmt.Sprintf("{path: %q}", dbPath),
		targetConfig{"first", targets[0].url(), ""}, targetConfig{"second", targets[1].url(), ""})
	if err != nil {
		return err
	}
	// A few connections, kept: the relay's goroutines then do not count
	// how many the bench happened to open.
	d, err := newPacedDriver(child.ingress, o.rps, 8)
	if err != nil {
		return err
	}
	res := SoakResult{Scenario: "soak", Binary: bin, RatePerS: o.rps, Seconds: o.duration.Seconds(), EveryS: o.interval.Seconds()}

	var start time.Time
	sample := func() SoakSample {
		s := SoakSample{Acked: d.acks.Load()}
		if !start.IsZero() {
			s.AtS = time.Since(start).Seconds()
		}
		pid := strconv.Itoa(child.pid())
		sizes := procStatus(pid)
		s.RSS, s.Anon, s.FDs = sizes["VmRSS"], sizes["RssAnon"], openFiles(pid)
		s.StoreBytes = dirSize(dbPath)
		if m, err := scrape(child.admin); err == nil {
			s.Goroutines = int64(m.sum("go_goroutines"))
			s.Pending = int64(m.sum("hooxrelay_queue_depth", "state", "pending"))
		}
		fmt.Fprintf(env.Progress, "\rsoak: %s of %s, %d acked, RSS %.1f MiB, %d goroutines, %d pending   ",
			time.Duration(s.AtS*float64(time.Second)).Round(time.Second), o.duration, s.Acked, mib(s.RSS), s.Goroutines, s.Pending)
		return s
	}
	res.Samples = append(res.Samples, sample()) // idle, before the load
	start = time.Now()
	sending, stop := r.drive(d, o.duration)
	tick := time.NewTicker(o.interval)
	for done := false; !done; {
		select {
		case <-tick.C:
			res.Samples = append(res.Samples, sample())
		case <-sending.Done():
			done = true
		}
	}
	tick.Stop()
	stop()
	res.Samples = append(res.Samples, sample()) // at the end of the load
	fmt.Fprintln(env.Progress)
	loadEnd := time.Now()
	res.Acks = d.stats()
	res.Delivery = r.drain(targets, d.ackedIDs(), loadEnd, o.wait)
	if err := child.stop(); err != nil {
		return err
	}
	load := res.Samples[1:]
	res.RSS = trend(load, func(s SoakSample) float64 { return float64(s.RSS) })
	res.Anon = trend(load, func(s SoakSample) float64 { return float64(s.Anon) })
	res.Goroutines = trend(load, func(s SoakSample) float64 { return float64(s.Goroutines) })
	return r.report(o.asJSON, res, res.Delivery)
}

// trend compares the mean of the last third of the samples with the
// first third's.
func trend(samples []SoakSample, v func(SoakSample) float64) SoakTrend {
	var t SoakTrend
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
	mean := func(ss []SoakSample) float64 {
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

func (r SoakResult) table(w io.Writer) {
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
		t    SoakTrend
		f    func(float64) string
	}{
		{"RSS", r.RSS, func(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }},
		{"anon", r.Anon, func(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }},
		{"goroutines", r.Goroutines, func(v float64) string { return fmt.Sprintf("%.0f", v) }},
	} {
		fmt.Fprintf(w, "%-11s first %s, last %s, max %s: %s (last third %+.1f%% on the first)\n", t.name, t.f(t.t.First), t.f(t.t.Last), t.f(t.t.Max), t.t.Verdict, t.t.ChangePct)
	}
	if last := r.Samples[len(r.Samples)-1]; r.RSS.Verdict != r.Anon.Verdict {
		fmt.Fprintf(w, "file-backed %.1f MiB of the RSS at the end (RSS - anon: the pages of the binary and of the store files mapped, the store now %.1f MiB)\n", mib(last.RSS-last.Anon), mib(last.StoreBytes))
	}
	a := r.Acks
	fmt.Fprintf(w, "acked       %d of %d sent (%.0f/s); p50 %.1f ms, p99 %.1f ms\n", a.Acked, a.Sent, float64(a.Acked)/r.Seconds, a.P50ms, a.P99ms)
	fmt.Fprintf(w, "lost        %d\nduplicated  %d\ndrain       %.1fs after the load ended\n", r.Delivery.Lost, r.Delivery.Dups, r.Delivery.DrainSec)
}

// dirSize returns the bytes of the files in dir, the store's directory.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
