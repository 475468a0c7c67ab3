package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/redisproc"
	"github.com/spf13/cobra"
)

// redisOutageResult is the outcome of "bench redis-outage".
type redisOutageResult struct {
	Scenario  string   `json:"scenario"`
	RatePerS  float64  `json:"rate_per_s"`
	DownS     float64  `json:"down_s"`
	LeaseS    float64  `json:"lease_s"`
	Acks      ackStats `json:"acks"`
	Answers   int64    `json:"answers_503_while_down"`
	ReadyDown int      `json:"readyz_status_while_down"`
	// FirstAckS is how long after redis-server was started again the
	// relay acked a webhook.
	FirstAckS *float64    `json:"first_ack_after_restart_s"`
	Delivery  drainResult `json:"delivery"`
}

// redisOutageFlags are the flags of "bench redis-outage".
type redisOutageFlags struct {
	down    time.Duration
	before  time.Duration
	after   time.Duration
	rps     float64
	lease   time.Duration
	wait    time.Duration
	dirFlag string
	asJSON  bool
}

func newBenchRedisOutageCmd(e *env) *cobra.Command {
	var o redisOutageFlags
	cmd := &cobra.Command{
		Use:   "redis-outage",
		Short: "the relay's redis-server killed for 10s under load, then restarted: 503s, acked vs delivered",
		Long: `Starts a redis-server of its own (it must be installed) on a free loopback
port in a temporary directory, with appendonly yes and appendfsync always
(an ack means fsync'd), and a relay on it with one target. It sends
--rate webhooks per second; after --before it kills redis-server
(SIGKILL), starts it again on the same files after --down, and keeps
sending for --after. Webhooks go on arriving at --rate during the outage,
and each is resent until acked (same body, after the Retry-After of a
503, as Hoox does).
It prints the 503s the senders saw, how soon after the restart webhooks
were acked again, acked against delivered, how many acked events were lost
(must be 0) and how many were delivered twice (attempts whose result could
not be recorded during the outage go again once their --lease ends).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runBenchRedisOutage(cmd.Context(), e, &o) },
	}
	f := cmd.Flags()
	f.DurationVar(&o.down, "down", 10*time.Second, "how long Redis is down")
	f.DurationVar(&o.before, "before", 3*time.Second, "how long to send before Redis goes down")
	f.DurationVar(&o.after, "after", 5*time.Second, "how long to send after Redis is back")
	f.Float64Var(&o.rps, "rate", 200, "webhooks per second")
	f.DurationVar(&o.lease, "lease", 30*time.Second, "store.redis.lease of the relay (the config's default is 30s)")
	f.DurationVar(&o.wait, "wait", 5*time.Minute, "longest wait for the deliveries after the load")
	f.StringVar(&o.dirFlag, "dir", "", "directory for Redis's files and the relay's log (default: a temporary directory)")
	f.BoolVar(&o.asJSON, "json", false, "print the result as one JSON object")
	return cmd
}

func runBenchRedisOutage(ctx context.Context, e *env, o *redisOutageFlags) error {
	if o.down <= 0 || o.rps <= 0 || o.lease <= 0 || o.before < 0 || o.after < 0 {
		return usagef("--down, --rate and --lease must be positive")
	}
	dir, logf, cleanup, err := scenarioDir(o.dirFlag)
	if err != nil {
		return err
	}
	defer cleanup()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	progress := e.stderr
	rs, err := redisproc.New(filepath.Join(dir, "redis"), true)
	if err != nil {
		return err
	}
	if err := rs.Start(ctx); err != nil {
		return err
	}
	defer rs.Kill()
	tgt := newBenchTarget("t")
	if err := tgt.start(ctx, &wg); err != nil {
		return err
	}
	rel, err := startInProcess(ctx, &wg, scenarioConfig("127.0.0.1:0", "127.0.0.1:0",
		fmt.Sprintf("{kind: redis, redis: {url: %q, prefix: hooxrelay-bench, lease: %s}}", "redis://"+rs.Addr+"/0", o.lease),
		scenarioTarget{"t", tgt.url(), ""}), logf)
	if err != nil {
		return err
	}
	d, err := newPacedDriver(rel.ingress, o.rps, 0)
	if err != nil {
		return err
	}
	res := redisOutageResult{Scenario: "redis-outage", RatePerS: o.rps, DownS: o.down.Seconds(), LeaseS: o.lease.Seconds()}

	start := time.Now()
	var phaseMu sync.Mutex
	phase := "Redis up"
	stopProgress := every(ctx, time.Second, func() {
		phaseMu.Lock()
		ph := phase
		phaseMu.Unlock()
		fmt.Fprintf(progress, "\rredis-outage: %s, %s, %d acked, %d answers 503, %d delivered   ",
			time.Since(start).Round(time.Second), ph, d.acks.Load(), d.unavailable.Load(), tgt.sink.distinct.Load())
	})
	defer stopProgress()
	setPhase := func(p string) {
		phaseMu.Lock()
		phase = p
		phaseMu.Unlock()
	}
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
	sleepCtx(ctx, o.before)
	unavailableBefore := d.unavailable.Load()
	rs.Kill()
	setPhase("REDIS DOWN")
	sleepCtx(ctx, o.down/2)
	if resp, err := probeClient.Get("http://" + rel.admin + "/readyz"); err == nil {
		resp.Body.Close()
		res.ReadyDown = resp.StatusCode
	}
	sleepCtx(ctx, o.down-o.down/2)
	acksAtRestart := d.acks.Load()
	if err := rs.Start(ctx); err != nil {
		stop()
		return fmt.Errorf("restart redis-server: %w", err)
	}
	restarted := time.Now()
	res.Answers = d.unavailable.Load() - unavailableBefore
	setPhase("Redis back")
	for time.Since(restarted) < max(o.after, 30*time.Second) && ctx.Err() == nil {
		if d.acks.Load() > acksAtRestart {
			s := time.Since(restarted).Seconds()
			res.FirstAckS = &s
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	sleepCtx(ctx, o.after-time.Since(restarted))
	stop()
	loadEnd := time.Now()
	res.Acks = d.stats()
	stopProgress()
	fmt.Fprintln(progress)
	res.Delivery = waitDelivered(ctx, []*benchTarget{tgt}, d.ackedIDs(), loadEnd, o.wait, progress, "redis-outage")
	cancel()
	if err := <-rel.served; err != nil {
		return fmt.Errorf("relay: %w", err)
	}
	return report(e, o.asJSON, res, res.Delivery)
}

func (r redisOutageResult) table(w io.Writer) {
	a := r.Acks
	fmt.Fprintf(w, "redis-outage: %g webhooks/s to a relay on its own redis-server (appendfsync always), killed for %gs; lease %gs\n\n", r.RatePerS, r.DownS, r.LeaseS)
	fmt.Fprintf(w, "acked       %d of %d sent (not acked: %d); at most %d being sent or resent at once\n", a.Acked, a.Sent, a.Unacked, a.MaxOpen)
	fmt.Fprintf(w, "503s        %d while Redis was down (%d in all; other answers %d, no answer %d); /readyz answered %d\n", r.Answers, a.Unavailable, a.OtherStatus, a.NoAnswer, r.ReadyDown)
	if r.FirstAckS != nil {
		fmt.Fprintf(w, "back        first ack %.2fs after redis-server was started again\n", *r.FirstAckS)
	} else {
		fmt.Fprintf(w, "back        NO ack after redis-server was started again\n")
	}
	fmt.Fprintf(w, "delivered   %d distinct events\n", r.Delivery.Targets[0].Delivered)
	fmt.Fprintf(w, "lost        %d\nduplicated  %d\ndrain       %.1fs after the load ended\n", r.Delivery.Lost, r.Delivery.Dups, r.Delivery.DrainSec)
}
