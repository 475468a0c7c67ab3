package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
)

// crashResult is the outcome of "bench crash".
type crashResult struct {
	Store       string      `json:"store"`
	Scenario    string      `json:"scenario"`
	Binary      string      `json:"relay_binary"`
	Seconds     float64     `json:"load_s"`
	RatePerS    float64     `json:"rate_per_s"`
	Acks        ackStats    `json:"acks"`
	AckedAtKill []int64     `json:"acked_at_each_kill"`
	RestartS    []float64   `json:"restart_s"` // from the kill until ready again
	Delivery    drainResult `json:"delivery"`
}

// crashFlags are the flags of "bench crash".
type crashFlags struct {
	duration time.Duration
	kills    int
	rps      float64
	delay    time.Duration
	relayBin string
	wait     time.Duration
	dirFlag  string
	asJSON   bool
	redisURL string
}

func newBenchCrashCmd(e *env) *cobra.Command {
	var o crashFlags
	cmd := &cobra.Command{
		Use:   "crash",
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
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBenchCrash(cmd.Context(), e, &o) },
	}
	f := cmd.Flags()
	f.DurationVar(&o.duration, "duration", 10*time.Second, "how long to send")
	f.IntVar(&o.kills, "kills", 1, "how many times to SIGKILL the relay during the load")
	f.Float64Var(&o.rps, "rate", 500, "webhooks sent per second")
	f.DurationVar(&o.delay, "delay", 20*time.Millisecond, "how long the slow target takes to answer")
	f.StringVar(&o.relayBin, "relay-binary", "", "hooxrelay binary to run as the relay (default: this one)")
	f.DurationVar(&o.wait, "wait", 5*time.Minute, "longest wait for the deliveries after the load")
	f.StringVar(&o.dirFlag, "dir", "", "directory for the relay's store, config and logs (default: a temporary directory)")
	f.BoolVar(&o.asJSON, "json", false, "print the result as one JSON object")
	redisFlag(f, &o.redisURL)
	return cmd
}

func runBenchCrash(ctx context.Context, e *env, o *crashFlags) error {
	if o.duration <= 0 || o.kills < 1 || o.delay < 0 || o.rps <= 0 {
		return usagef("--duration, --kills and --rate must be positive")
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
	storeYAML, storeName, err := scenarioStore(o.redisURL, filepath.Join(dir, "relay.db"), 2*time.Second)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	progress := e.stderr

	slow, down := newBenchTarget("slow"), newBenchTarget("down")
	slow.sink.delay = o.delay
	down.down.Store(true)
	for _, t := range []*benchTarget{slow, down} {
		if err := t.start(ctx, &wg); err != nil {
			return err
		}
	}
	retry := "retry: {initial_interval: 200ms, max_interval: 2s, max_attempts: 1000}, breaker: {open_timeout: 1s}"
	child, err := newChildRelay(bin, dir, storeYAML,
		scenarioTarget{"slow", slow.url(), "max_in_flight: 8, " + retry},
		scenarioTarget{"down", down.url(), retry})
	if err != nil {
		return err
	}
	if err := child.start(ctx); err != nil {
		return err
	}
	defer child.kill()
	d, err := newPacedDriver(child.ingress, o.rps, 0)
	if err != nil {
		return err
	}
	res := crashResult{Store: storeName, Scenario: "crash", Binary: bin, Seconds: o.duration.Seconds(), RatePerS: o.rps}

	start := time.Now()
	var killed atomic.Int64
	stopProgress := every(ctx, time.Second, func() {
		fmt.Fprintf(progress, "\rcrash: %s, %d acked, delivered %d (slow) and %d (down), %d kills   ",
			time.Since(start).Round(time.Second), d.acks.Load(), slow.sink.distinct.Load(), down.sink.distinct.Load(), killed.Load())
	})
	defer stopProgress()
	sendCtx, stopSending := context.WithCancel(ctx)
	driven := make(chan struct{})
	go func() {
		defer close(driven)
		d.run(ctx, sendCtx)
	}()
	stop := func() {
		stopSending()
		<-driven
	}
	step := o.duration / time.Duration(o.kills+1)
	for range o.kills {
		sleepCtx(ctx, step)
		res.AckedAtKill = append(res.AckedAtKill, d.acks.Load())
		killedAt := time.Now()
		child.kill()
		killed.Add(1)
		if err := child.start(ctx); err != nil {
			stop()
			return fmt.Errorf("restart after SIGKILL: %w", err)
		}
		res.RestartS = append(res.RestartS, time.Since(killedAt).Seconds())
	}
	sleepCtx(ctx, o.duration-time.Duration(o.kills)*step)
	stop()
	loadEnd := time.Now()
	down.setDown(false)
	res.Acks = d.stats()
	stopProgress()
	fmt.Fprintln(progress)
	res.Delivery = waitDelivered(ctx, []*benchTarget{slow, down}, d.ackedIDs(), loadEnd, o.wait, progress, "crash")
	if err := child.stop(); err != nil {
		return err
	}
	return report(e, o.asJSON, res, res.Delivery)
}

func (r crashResult) table(w io.Writer) {
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
