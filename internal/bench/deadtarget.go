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

var deadTarget = &Scenario{
	Name:  "dead-target",
	Short: "a target down (503 or connection refused) for a minute, then back: attempts while down, breaker opens, drain",
	Long: `Sends webhooks at --rate to a relay (embedded store, or Redis with --redis) whose one target is up
for --before, then down for --down (answering 503, or refusing connections
with --as refused), then back; sending stops when it is back. The target
has the default retry policy and breaker (opens at half of at least 10
attempts failing), with open_timeout --open-timeout.
It prints the delivery attempts made while the target was down (the
breaker should keep them few: after it opens, one probe per open timeout),
how many times the breaker opened, how long after the recovery it closed
and the backlog drained, and how many acked events were lost (must be 0)
or delivered twice.`,
	Flags: func(f *pflag.FlagSet) func(context.Context, *Env) error {
		o := &deadTargetFlags{}
		f.DurationVar(&o.down, "down", time.Minute, "how long the target is down (10s makes a quick run)")
		f.StringVar(&o.downAs, "as", "503", "how the target is down: 503 (answers 503 Service Unavailable) or refused (connection refused)")
		f.DurationVar(&o.before, "before", time.Second, "how long the target is up before it goes down")
		f.Float64Var(&o.rps, "rate", 100, "webhooks sent per second")
		f.DurationVar(&o.openTimeout, "open-timeout", 30*time.Second, "the target's breaker.open_timeout (the config's default is 30s)")
		waitFlag(f, &o.wait, "the target is back")
		dirFlag(f, &o.dir, "the relay's store and log")
		jsonFlag(f, &o.asJSON)
		redisFlag(f, &o.redisURL)
		return o.run
	},
}

// DeadTargetResult is the outcome of "bench dead-target".
type DeadTargetResult struct {
	Store       string   `json:"store"`
	Scenario    string   `json:"scenario"`
	DownAs      string   `json:"down_as"`
	DownS       float64  `json:"down_s"`
	RatePerS    float64  `json:"rate_per_s"`
	OpenTimeout float64  `json:"breaker_open_timeout_s"`
	Acks        AckStats `json:"acks"`
	// AttemptsWhileDown are the delivery attempts that ended while the
	// target was down; AttemptsBeforeOpen of them ended before the
	// breaker first opened, the rest while it was open or half-open.
	AttemptsWhileDown  int64 `json:"attempts_while_down"`
	AttemptsBeforeOpen int64 `json:"attempts_before_breaker_opened"`
	// TargetSawWhileDown counts the requests the target answered 503
	// (0 when it refused connections).
	TargetSawWhileDown int64    `json:"requests_target_saw_while_down"`
	BreakerOpens       int64    `json:"breaker_opens"`
	BreakerClosedS     *float64 `json:"breaker_closed_after_recovery_s"`
	BacklogAtRecovery  int64    `json:"backlog_at_recovery"`
	Delivery           Drain    `json:"delivery"`
}

// deadTargetFlags are the flags of "bench dead-target".
type deadTargetFlags struct {
	down        time.Duration
	downAs      string
	before      time.Duration
	rps         float64
	openTimeout time.Duration
	wait        time.Duration
	dir         string
	asJSON      bool
	redisURL    string
}

func (o *deadTargetFlags) run(ctx context.Context, env *Env) error {
	if o.downAs != "503" && o.downAs != "refused" {
		return usagef("--as %q: want 503 or refused", o.downAs)
	}
	if o.down <= 0 || o.rps <= 0 || o.openTimeout <= 0 || o.before < 0 {
		return usagef("--down, --rate and --open-timeout must be positive")
	}
	r, err := newRun(ctx, env, "dead-target", o.dir)
	if err != nil {
		return err
	}
	defer r.close()
	storeYAML, storeName, err := storeConfig(o.redisURL, filepath.Join(r.dir, "bench"), 30*time.Second)
	if err != nil {
		return err
	}
	tgt := &target{name: "flaky", refuse: o.downAs == "refused"}
	if err := r.start(tgt); err != nil {
		return err
	}
	rel, err := r.serve(storeYAML, targetConfig{"flaky", tgt.url(), fmt.Sprintf("breaker: {open_timeout: %s}", o.openTimeout)})
	if err != nil {
		return err
	}
	d, err := newPacedDriver(rel.ingress, o.rps, 0)
	if err != nil {
		return err
	}
	res := DeadTargetResult{Store: storeName, Scenario: "dead-target", DownAs: o.downAs, DownS: o.down.Seconds(), RatePerS: o.rps, OpenTimeout: o.openTimeout.Seconds()}

	start := time.Now()
	var phase atomic.Value
	phase.Store("up")
	stopProgress := r.progress(func() string {
		breaker := "?"
		if m, err := scrape(rel.admin); err == nil {
			breaker = [...]string{"closed", "half-open", "open"}[min(2, int(m.sum("hooxrelay_breaker_state", "target", "flaky")))]
		}
		return fmt.Sprintf("%s, target %s, breaker %s, %d acked, %d attempts, %d delivered",
			time.Since(start).Round(time.Second), phase.Load(), breaker, d.acks.Load(), rel.watch.attempts.Load(), tgt.distinct.Load())
	})
	defer stopProgress()
	_, stop := r.drive(d, 0)
	sleepCtx(r.ctx, o.before)
	attemptsAtDown := rel.watch.attempts.Load()
	if err := tgt.setDown(true); err != nil {
		stop()
		return err
	}
	phase.Store("DOWN (" + o.downAs + ")")
	sleepCtx(r.ctx, o.down)
	attemptsAtUp := rel.watch.attempts.Load()
	if err := tgt.setDown(false); err != nil {
		stop()
		return err
	}
	upAt := time.Now()
	phase.Store("back up")
	stop()
	res.Acks = d.stats()
	res.AttemptsWhileDown = attemptsAtUp - attemptsAtDown
	res.TargetSawWhileDown = tgt.downHits.Load()
	res.BreakerOpens = rel.watch.opens.Load()
	rel.watch.mu.Lock()
	if res.BreakerOpens > 0 {
		res.AttemptsBeforeOpen = max(0, rel.watch.attemptsAtOpen-attemptsAtDown)
	} else {
		res.AttemptsBeforeOpen = res.AttemptsWhileDown
	}
	rel.watch.mu.Unlock()
	acked := d.ackedIDs()
	res.BacklogAtRecovery = int64(len(acked)) - tgt.distinct.Load()
	stopProgress()
	res.Delivery = r.drain([]*target{tgt}, acked, upAt, o.wait)
	rel.watch.mu.Lock()
	if lc := rel.watch.lastClosed; lc.After(upAt) {
		s := lc.Sub(upAt).Seconds()
		res.BreakerClosedS = &s
	}
	rel.watch.mu.Unlock()
	if err := r.stop(rel); err != nil {
		return err
	}
	return r.report(o.asJSON, res, res.Delivery)
}

func (r DeadTargetResult) table(w io.Writer) {
	a := r.Acks
	fmt.Fprintf(w, "dead-target: %g webhooks/s; the target down (%s) for %gs, then back; breaker open_timeout %gs; %s\n\n", r.RatePerS, r.DownAs, r.DownS, r.OpenTimeout, r.Store)
	fmt.Fprintf(w, "acked            %d of %d sent (not acked: %d)\n", a.Acked, a.Sent, a.Unacked)
	fmt.Fprintf(w, "attempts down    %d: %d before the breaker opened, %d after", r.AttemptsWhileDown, r.AttemptsBeforeOpen, r.AttemptsWhileDown-r.AttemptsBeforeOpen)
	if r.DownAs == "503" {
		fmt.Fprintf(w, " (the target saw %d)", r.TargetSawWhileDown)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "breaker opened   %d times\n", r.BreakerOpens)
	if r.BreakerClosedS != nil {
		fmt.Fprintf(w, "breaker closed   %.1fs after the target came back\n", *r.BreakerClosedS)
	}
	fmt.Fprintf(w, "drain            %d pending at the recovery, all delivered %.1fs after it\n", r.BacklogAtRecovery, r.Delivery.DrainSec)
	fmt.Fprintf(w, "lost             %d\n", r.Delivery.Lost)
	fmt.Fprintf(w, "duplicated       %d\n", r.Delivery.Dups)
}
