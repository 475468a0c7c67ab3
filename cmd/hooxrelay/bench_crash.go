package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
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

func runBenchCrash(ctx context.Context, name string, args []string, e *env) error {
	fs := newFlags(e, name, "[--duration D] [--kills N] [--json]", `Runs the relay as a child process ("hooxrelay serve", on the embedded store or, with --redis, on Redis) with
two targets: "slow" answers after --delay with at most 8 attempts in flight
(400/s with the default delay), so a backlog builds up and attempts are
always in flight; "down" answers 503 until the load ends. Webhooks arrive
at --rate for --duration, and each is resent until acked (same body, as
Hoox does). Meanwhile the relay is SIGKILLed --kills times, evenly spaced, and
restarted at once on the same store. Then "down" comes back.
It prints the events acked (2xx answers seen by the senders) against the
distinct Webhook-Ids each target received: lost (acked, never delivered;
must be 0), duplicated (at-least-once redeliveries of attempts in flight
at the kill) and delivered but never acked.`)
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	kills := fs.Int("kills", 1, "how many times to SIGKILL the relay during the load")
	rps := fs.Float64("rate", 500, "webhooks sent per second")
	delay := fs.Duration("delay", 20*time.Millisecond, "how long the slow target takes to answer")
	relayBin := fs.String("relay-binary", "", "hooxrelay binary to run as the relay (default: this one)")
	wait := fs.Duration("wait", 5*time.Minute, "longest wait for the deliveries after the load")
	dirFlag := fs.String("dir", "", "directory for the relay's store, config and logs (default: a temporary directory)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	redisURL := redisFlag(fs)
	if err := parseFlags(fs, args, e); err != nil {
		return err
	}
	if *duration <= 0 || *kills < 1 || *delay < 0 || *rps <= 0 {
		return usagef("--duration, --kills and --rate must be positive")
	}
	bin, err := relayBinary(*relayBin)
	if err != nil {
		return err
	}
	dir, cleanup, err := benchDir(*dirFlag)
	if err != nil {
		return err
	}
	defer cleanup()
	storeYAML, storeName, err := scenarioStore(*redisURL, filepath.Join(dir, "relay.db"), 2*time.Second)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	progress := e.stderr

	slow, down := newBenchTarget("slow"), newBenchTarget("down")
	slow.sink.delay = *delay
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
	d, err := newPacedDriver(child.ingress, *rps, 0)
	if err != nil {
		return err
	}
	res := crashResult{Store: storeName, Scenario: "crash", Binary: bin, Seconds: duration.Seconds(), RatePerS: *rps}

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
	step := *duration / time.Duration(*kills+1)
	for range *kills {
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
	sleepCtx(ctx, *duration-time.Duration(*kills)*step)
	stop()
	loadEnd := time.Now()
	down.setDown(false)
	res.Acks = d.stats()
	stopProgress()
	fmt.Fprintln(progress)
	res.Delivery = waitDelivered(ctx, []*benchTarget{slow, down}, d.ackedIDs(), loadEnd, *wait, progress, "crash")
	if err := child.stop(); err != nil {
		return err
	}
	return report(e, *asJSON, res, res.Delivery)
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
