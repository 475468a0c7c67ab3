package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/spf13/pflag"
)

var crash = &Scenario{
	Name:  "crash",
	Short: "a relay process SIGKILLed under load with a backlog, then restarted: acked vs delivered",
	Long: `Runs the relay as a child process ("hooxrelay serve", on the embedded store or, with --redis, on Redis) with
two targets: "slow" answers after --delay with at most 8 attempts in flight
(400/s with the default delay), so a backlog builds up and attempts are
always in flight; "down" answers 503 until the load ends. Webhooks arrive
at --rate for --duration, and each is resent until acked (same body, as
Hoox does). Meanwhile the relay is SIGKILLed --kills times, evenly spaced, and
restarted at once on the same store. Then "down" comes back.
It prints the events acked (2xx answers seen by the senders) against the
distinct Webhook-Ids each target received: lost (acked, never delivered;
must be 0), duplicated (at-least-once redeliveries of attempts in flight
at the kill) and delivered but never acked.`,
	Flags: func(f *pflag.FlagSet) func(context.Context, *Env) error {
		o := &crashFlags{}
		f.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send")
		f.IntVar(&o.kills, "kills", 1, "how many times to SIGKILL the relay during the load")
		f.Float64Var(&o.rps, "rate", 500, "webhooks sent per second")
		f.DurationVar(&o.delay, "delay", 20*time.Millisecond, "how long the slow target takes to answer")
		f.StringVar(&o.relayBin, "relay-binary", "", "hooxrelay binary to run as the relay (default: this one)")
		waitFlag(f, &o.wait, "the load")
		dirFlag(f, &o.dir, "the relay's store, config and logs")
		jsonFlag(f, &o.asJSON)
		redisFlag(f, &o.redisURL)
		return o.run
	},
}

// CrashResult is the outcome of "bench crash".
type CrashResult struct {
	Store       string    `json:"store"`
	Scenario    string    `json:"scenario"`
	Binary      string    `json:"relay_binary"`
	Seconds     float64   `json:"load_s"`
	RatePerS    float64   `json:"rate_per_s"`
	Acks        AckStats  `json:"acks"`
	AckedAtKill []int64   `json:"acked_at_each_kill"`
	RestartS    []float64 `json:"restart_s"` // from the kill until ready again
	Delivery    Drain     `json:"delivery"`
}

// crashFlags are the flags of "bench crash".
type crashFlags struct {
	duration time.Duration
	kills    int
	rps      float64
	delay    time.Duration
	relayBin string
	wait     time.Duration
	dir      string
	asJSON   bool
	redisURL string
}

func (o *crashFlags) run(ctx context.Context, env *Env) error {
	if o.duration <= 0 || o.kills < 1 || o.delay < 0 || o.rps <= 0 {
		return usagef("--duration, --kills and --rate must be positive")
	}
	bin, err := relayBinary(o.relayBin)
	if err != nil {
		return err
	}
	r, err := newRun(ctx, env, "crash", o.dir)
	if err != nil {
		return err
	}
	defer r.close()
	storeYAML, storeName, err := storeConfig(o.redisURL, filepath.Join(r.dir, "relay"), 2*time.Second)
	if err != nil {
		return err
	}
	slow, down := &target{name: "slow", delay: o.delay}, &target{name: "down"}
	down.down.Store(true)
	if err := r.start(slow, down); err != nil {
		return err
	}
	retry := "retry: {initial_interval: 200ms, max_interval: 2s, max_attempts: 1000}, breaker: {open_timeout: 1s}"
	child, err := r.child(bin, storeYAML,
		targetConfig{"slow", slow.url(), "max_in_flight: 8, " + retry},
		targetConfig{"down", down.url(), retry})
	if err != nil {
		return err
	}
	d, err := newPacedDriver(child.ingress, o.rps, 0)
	if err != nil {
		return err
	}
	res := CrashResult{Store: storeName, Scenario: "crash", Binary: bin, Seconds: o.duration.Seconds(), RatePerS: o.rps}

	start := time.Now()
	var killed atomic.Int64
	stopProgress := r.progress(func() string {
		return fmt.Sprintf("%s, %d acked, delivered %d (slow) and %d (down), %d kills",
			time.Since(start).Round(time.Second), d.acks.Load(), slow.distinct.Load(), down.distinct.Load(), killed.Load())
	})
	defer stopProgress()
	_, stop := r.drive(d, 0)
	step := o.duration / time.Duration(o.kills+1)
	for range o.kills {
		sleepCtx(r.ctx, step)
		res.AckedAtKill = append(res.AckedAtKill, d.acks.Load())
		killedAt := time.Now()
		child.kill()
		killed.Add(1)
		if err := child.start(r.ctx); err != nil {
			stop()
			return fmt.Errorf("restart after SIGKILL: %w", err)
		}
		res.RestartS = append(res.RestartS, time.Since(killedAt).Seconds())
	}
	sleepCtx(r.ctx, o.duration-time.Duration(o.kills)*step)
	stop()
	loadEnd := time.Now()
	down.setDown(false)
	res.Acks = d.stats()
	stopProgress()
	res.Delivery = r.drain([]*target{slow, down}, d.ackedIDs(), loadEnd, o.wait)
	if err := child.stop(); err != nil {
		return err
	}
	return r.report(o.asJSON, res, res.Delivery)
}

func (r CrashResult) table(w io.Writer) {
	a := r.Acks
	fmt.Fprintf(w, "crash: %g webhooks/s for %gs; the relay process SIGKILLed %d time(s) mid-load and restarted on the same store\n", r.RatePerS, r.Seconds, len(r.RestartS))
	fmt.Fprintf(w, "store: %s; targets: slow (8 in flight, slow answers: a backlog), down (503 until the load ended)\n\n", r.Store)
	fmt.Fprintf(w, "acked       %d of %d sent (not acked: %d; requests without an answer: %d, other answers: %d)\n", a.Acked, a.Sent, a.Unacked, a.NoAnswer, a.OtherStatus+a.Unavailable)
	for i := range r.RestartS {
		fmt.Fprintf(w, "kill %d      after %d acks; ready again %.2fs later\n", i+1, r.AckedAtKill[i], r.RestartS[i])
	}
	fmt.Fprintf(w, "\n%-10s %10s %6s %11s %21s\n", "target", "delivered", "lost", "duplicated", "delivered, not acked")
	for _, t := range r.Delivery.Targets {
		fmt.Fprintf(w, "%-10s %10d %6d %11d %21d\n", t.Name, t.Delivered, t.Lost, t.Duplicated, t.NotAcked)
	}
	fmt.Fprintf(w, "\nlost        %d\nduplicated  %d\ndrain       %.1fs after the load ended\n", r.Delivery.Lost, r.Delivery.Dups, r.Delivery.DrainSec)
}
