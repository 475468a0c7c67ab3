package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/pflag"
)

var backlog = &Scenario{
	Name:  "backlog",
	Short: "a million webhooks acked while both targets are paused: the relay's memory and ingest rate as the backlog grows, then the drain",
	Long: `Runs the relay as a child process ("hooxrelay serve", on the embedded store or,
with --redis, on Redis) with two targets, pauses both through the admin
API, and sends --events webhooks (1,000,000 by default: a few minutes; run
it on demand, not in CI) from --senders closed-loop senders, each resent
until acked. Nothing is delivered meanwhile, so every acked webhook adds
two pending deliveries to the backlog.
It prints, for each quarter of the events, the ingest rate and the relay's
anonymous resident memory (RssAnon in /proc/PID/status: its own memory,
not the pages of files it maps) at the quarter's end; the largest RssAnon
sampled every --every; the last quarter's rate against the first's (at
least 0.8 when ingest does not slow down as the backlog grows). Then it
resumes both targets, waits until every acked event reached both, and
prints the drain time, how many acked events were lost (must be 0) and
how many were delivered twice.`,
	Flags: func(f *pflag.FlagSet) func(context.Context, *Env) error {
		o := &backlogFlags{}
		f.Int64Var(&o.events, "events", 1_000_000, "webhooks to ack while the targets are paused")
		f.IntVar(&o.senders, "senders", 64, "concurrent senders")
		f.DurationVar(&o.every, "every", time.Second, "how often to sample the relay's memory")
		f.StringVar(&o.relayBin, "relay-binary", "", "hooxrelay binary to run as the relay (default: this one)")
		waitFlag(f, &o.wait, "the targets are resumed")
		dirFlag(f, &o.dir, "the relay's store, config and logs")
		jsonFlag(f, &o.asJSON)
		redisFlag(f, &o.redisURL)
		return o.run
	},
}

// backlogFlags are the flags of "bench backlog".
type backlogFlags struct {
	events   int64
	senders  int
	every    time.Duration
	relayBin string
	wait     time.Duration
	dir      string
	asJSON   bool
	redisURL string
}

// BacklogQuarter is one quarter of the events of "bench backlog".
type BacklogQuarter struct {
	Acked    int64   `json:"acked"` // in all, at the quarter's end
	Seconds  float64 `json:"seconds"`
	RatePerS float64 `json:"acks_per_s"`
	Anon     int64   `json:"rss_anon_bytes"` // at the quarter's end
	RSS      int64   `json:"rss_bytes"`
}

// BacklogResult is the outcome of "bench backlog".
type BacklogResult struct {
	Scenario string           `json:"scenario"`
	Store    string           `json:"store"`
	Binary   string           `json:"relay_binary"`
	Events   int64            `json:"events"`
	Senders  int              `json:"senders"`
	Acks     AckStats         `json:"acks"`
	Quarters []BacklogQuarter `json:"quarters"`
	// LastOnFirst is the last quarter's ingest rate on the first's.
	LastOnFirst float64 `json:"last_on_first_quarter"`
	MaxAnon     int64   `json:"max_rss_anon_bytes"`
	IdleAnon    int64   `json:"idle_rss_anon_bytes"` // before the load
	Pending     int64   `json:"pending_at_resume"`   // hooxrelay_queue_depth, before the resume
	// DeliveryRate is the deliveries per second from the resume until the
	// last one arrived.
	DeliveryRate float64 `json:"deliveries_per_s"`
	Delivery     Drain   `json:"delivery"`
	LoadAvg      string  `json:"loadavg,omitempty"`
}

func (o *backlogFlags) run(ctx context.Context, env *Env) error {
	if o.events < 4 || o.senders < 1 || o.every <= 0 {
		return usagef("--events must be at least 4, --senders and --every positive")
	}
	bin, err := relayBinary(o.relayBin)
	if err != nil {
		return err
	}
	r, err := newRun(ctx, env, "backlog", o.dir)
	if err != nil {
		return err
	}
	defer r.close()
	storeYAML, storeName, err := storeConfig(o.redisURL, filepath.Join(r.dir, "store"), 30*time.Second)
	if err != nil {
		return err
	}
	targets := []*target{{name: "first"}, {name: "second"}}
	if err := r.start(targets...); err != nil {
		return err
	}
	child, err := r.child(bin, storeYAML, targetConfig{"first", targets[0].url(), ""}, targetConfig{"second", targets[1].url(), ""})
	if err != nil {
		return err
	}
	for _, t := range targets {
		if err := adminPost(child.admin, "/api/v1/targets/"+t.name+"/pause"); err != nil {
			return err
		}
	}
	d, err := newDriver(child.ingress, o.senders)
	if err != nil {
		return err
	}
	d.events, d.retry = o.events, true
	res := BacklogResult{Scenario: "backlog", Store: storeName, Binary: bin, Events: o.events, Senders: o.senders}
	pid := strconv.Itoa(child.pid())
	res.IdleAnon = procStatus(pid)["RssAnon"]

	var mu sync.Mutex // guards res.MaxAnon
	sampleStop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(o.every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				anon := procStatus(pid)["RssAnon"]
				mu.Lock()
				res.MaxAnon = max(res.MaxAnon, anon)
				mu.Unlock()
				fmt.Fprintf(env.Progress, "\rbacklog: %d of %d acked, relay anon RSS %.1f MiB   ", d.acks.Load(), o.events, mib(anon))
			case <-sampleStop:
				return
			}
		}
	}()
	_, stop := r.drive(d, 0)
	start := time.Now()
	last := start
	for q := int64(1); q <= 4 && r.ctx.Err() == nil; q++ {
		want := o.events * q / 4
		for d.acks.Load() < want && r.ctx.Err() == nil && d.acks.Load()+d.unacked.Load() < o.events {
			time.Sleep(20 * time.Millisecond)
		}
		now := time.Now()
		sizes := procStatus(pid)
		qr := BacklogQuarter{Acked: d.acks.Load(), Seconds: now.Sub(last).Seconds(), Anon: sizes["RssAnon"], RSS: sizes["VmRSS"]}
		prev := int64(0)
		if q > 1 {
			prev = res.Quarters[q-2].Acked
		}
		qr.RatePerS = float64(qr.Acked-prev) / qr.Seconds
		res.Quarters = append(res.Quarters, qr)
		last = now
	}
	stop()
	close(sampleStop)
	<-sampled
	fmt.Fprintln(env.Progress)
	res.Acks = d.stats()
	if len(res.Quarters) == 4 && res.Quarters[0].RatePerS > 0 {
		res.LastOnFirst = res.Quarters[3].RatePerS / res.Quarters[0].RatePerS
	}
	sleepCtx(r.ctx, 1500*time.Millisecond) // the relay's gauges move every second
	if m, err := scrape(child.admin); err == nil {
		res.Pending = int64(m.sum("hooxrelay_queue_depth", "state", "pending"))
	}
	resumed := time.Now()
	for _, t := range targets {
		if err := adminPost(child.admin, "/api/v1/targets/"+t.name+"/resume"); err != nil {
			return err
		}
	}
	res.Delivery = r.drain(targets, d.ackedIDs(), resumed, o.wait)
	if res.Delivery.DrainSec > 0 {
		res.DeliveryRate = float64(res.Delivery.Targets[0].Delivered+res.Delivery.Targets[1].Delivered) / res.Delivery.DrainSec
	}
	if err := child.stop(); err != nil {
		return err
	}
	res.LoadAvg = loadAvg()
	return r.report(o.asJSON, res, res.Delivery)
}

// adminPost posts to a relay's admin API and wants a 2xx.
func adminPost(admin, path string) error {
	resp, err := probeClient.Post("http://"+admin+path, "application/json", nil)
	if err != nil {
		return fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("POST %s: %s %s", path, resp.Status, b)
	}
	return nil
}

func (r BacklogResult) table(w io.Writer) {
	a := r.Acks
	fmt.Fprintf(w, "backlog: %d webhooks from %d senders to a relay process (%s) whose 2 targets are paused\n\n", r.Events, r.Senders, r.Store)
	fmt.Fprintf(w, "%8s %10s %9s %9s %11s %9s\n", "quarter", "acked", "seconds", "acks/s", "anon MiB", "RSS MiB")
	for i, q := range r.Quarters {
		fmt.Fprintf(w, "%8d %10d %9.1f %9.0f %11.1f %9.1f\n", i+1, q.Acked, q.Seconds, q.RatePerS, mib(q.Anon), mib(q.RSS))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "ingest      last quarter at %.2f of the first's rate; ack p50 %.1f ms, p99 %.1f ms; not acked %d\n", r.LastOnFirst, a.P50ms, a.P99ms, a.Unacked)
	fmt.Fprintf(w, "memory      anon RSS %.1f MiB idle, %.1f MiB at most (sampled), with %d deliveries pending at the end\n", mib(r.IdleAnon), mib(r.MaxAnon), r.Pending)
	fmt.Fprintf(w, "drain       %.1fs after the resume (%.0f deliveries/s)\n", r.Delivery.DrainSec, r.DeliveryRate)
	fmt.Fprintf(w, "lost        %d\nduplicated  %d\n", r.Delivery.Lost, r.Delivery.Dups)
	if r.LoadAvg != "" {
		fmt.Fprintf(w, "load avg    %s (the machine's, at the end)\n", r.LoadAvg)
	}
}
