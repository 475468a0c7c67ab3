package bench

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/hooxrelay/hooxrelay/internal/redisproc"
	"github.com/spf13/pflag"
)

var redisOutage = &Scenario{
	Name:  "redis-outage",
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
	Flags: func(f *pflag.FlagSet) func(context.Context, *Env) error {
		o := &redisOutageFlags{}
		f.DurationVar(&o.down, "down", 10*time.Second, "how long Redis is down")
		f.DurationVar(&o.before, "before", 3*time.Second, "how long to send before Redis goes down")
		f.DurationVar(&o.after, "after", 5*time.Second, "how long to send after Redis is back")
		f.Float64Var(&o.rps, "rate", 200, "webhooks per second")
		f.DurationVar(&o.lease, "lease", 30*time.Second, "store.redis.lease of the relay (the config's default is 30s)")
		waitFlag(f, &o.wait, "the load")
		dirFlag(f, &o.dir, "Redis's files and the relay's log")
		jsonFlag(f, &o.asJSON)
		return o.run
	},
}

// RedisOutageResult is the outcome of "bench redis-outage".
type RedisOutageResult struct {
	Scenario  string   `json:"scenario"`
	RatePerS  float64  `json:"rate_per_s"`
	DownS     float64  `json:"down_s"`
	LeaseS    float64  `json:"lease_s"`
	Acks      AckStats `json:"acks"`
	Answers   int64    `json:"answers_503_while_down"`
	ReadyDown int      `json:"readyz_status_while_down"`
	// FirstAckS is how long after redis-server was started again the
	// relay acked a webhook.
	FirstAckS *float64 `json:"first_ack_after_restart_s"`
	Delivery  Drain    `json:"delivery"`
}

// redisOutageFlags are the flags of "bench redis-outage".
type redisOutageFlags struct {
	down   time.Duration
	before time.Duration
	after  time.Duration
	rps    float64
	lease  time.Duration
	wait   time.Duration
	dir    string
	asJSON bool
}

func (o *redisOutageFlags) run(ctx context.Context, env *Env) error {
	if o.down <= 0 || o.rps <= 0 || o.lease <= 0 || o.before < 0 || o.after < 0 {
		return usagef("--down, --rate and --lease must be positive")
	}
	r, err := newRun(ctx, env, "redis-outage", o.dir)
	if err != nil {
		return err
	}
	defer r.close()
	rs, err := redisproc.New(filepath.Join(r.dir, "redis"), true)
	if err != nil {
		return err
	}
	if err := rs.Start(r.ctx); err != nil {
		return err
	}
	defer rs.Kill()
	tgt := &target{name: "t"}
	if err := r.start(tgt); err != nil {
		return err
	}
	rel, err := r.serve(fmt.Sprintf("{kind: redis, redis: {url: %q, prefix: hooxrelay-bench, lease: %s}}", "redis://"+rs.Addr+"/0", o.lease),
		targetConfig{"t", tgt.url(), ""})
	if err != nil {
		return err
	}
	d, err := newPacedDriver(rel.ingress, o.rps, 0)
	if err != nil {
		return err
	}
	res := RedisOutageResult{Scenario: "redis-outage", RatePerS: o.rps, DownS: o.down.Seconds(), LeaseS: o.lease.Seconds()}

	start := time.Now()
	var phase atomic.Value
	phase.Store("Redis up")
	stopProgress := r.progress(func() string {
		return fmt.Sprintf("%s, %s, %d acked, %d answers 503, %d delivered",
			time.Since(start).Round(time.Second), phase.Load(), d.acks.Load(), d.unavailable.Load(), tgt.distinct.Load())
	})
	defer stopProgress()
	_, stop := r.drive(d, 0)
	sleepCtx(r.ctx, o.before)
	unavailableBefore := d.unavailable.Load()
	rs.Kill()
	phase.Store("REDIS DOWN")
	sleepCtx(r.ctx, o.down/2)
	if resp, err := probeClient.Get("http://" + rel.admin + "/readyz"); err == nil {
		resp.Body.Close()
		res.ReadyDown = resp.StatusCode
	}
	sleepCtx(r.ctx, o.down-o.down/2)
	acksAtRestart := d.acks.Load()
	if err := rs.Start(r.ctx); err != nil {
		stop()
		return fmt.Errorf("restart redis-server: %w", err)
	}
	restarted := time.Now()
	res.Answers = d.unavailable.Load() - unavailableBefore
	phase.Store("Redis back")
	for time.Since(restarted) < max(o.after, 30*time.Second) && r.ctx.Err() == nil {
		if d.acks.Load() > acksAtRestart {
			s := time.Since(restarted).Seconds()
			res.FirstAckS = &s
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	sleepCtx(r.ctx, o.after-time.Since(restarted))
	stop()
	loadEnd := time.Now()
	res.Acks = d.stats()
	stopProgress()
	res.Delivery = r.drain([]*target{tgt}, d.ackedIDs(), loadEnd, o.wait)
	if err := r.stop(rel); err != nil {
		return err
	}
	return r.report(o.asJSON, res, res.Delivery)
}

func (r RedisOutageResult) table(w io.Writer) {
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
