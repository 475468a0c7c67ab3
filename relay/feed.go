package relay

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/shape"
	"github.com/sony/gobreaker/v2"
)

// While ingress is busy, each target claims at most burstClaim deliveries
// per burstPause (about 200 attempts per second), so deliveries go on during
// a burst and catch up at full speed after it. Past burstBacklog pending
// deliveries a target stops yielding: a sustained overload must not grow
// the queue without end.
const (
	burstClaim   = 2
	burstPause   = 10 * time.Millisecond
	burstBacklog = 100000
)

// sleep waits for a kick, for until (when not zero) or for ctx.
func (t *target) sleep(ctx context.Context, until time.Time) {
	wait := t.opts.PollInterval
	if !until.IsZero() {
		wait = min(wait, until.Sub(t.opts.Now()))
	}
	if wait <= 0 {
		return
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case <-t.wake:
	case <-timer.C:
	case <-ctx.Done():
	}
}

// feed claims due deliveries while slots are free, paces them through the
// rate limiter and the breaker, and starts an attempt for each, until ctx
// ends. The attempts run under actx, which ends only when a shutdown cuts
// them off, and attempts waits for them.
func (t *target) feed(ctx, actx context.Context, attempts *sync.WaitGroup) {
	storeFailing := false
	for ctx.Err() == nil {
		if t.paused.Load() {
			from := t.opts.Now()
			t.sleep(ctx, time.Time{}) // Pause(false) kicks
			t.held(WaitingPaused, from)
			continue
		}
		free := t.slots.take(ctx)
		if free == 0 {
			return
		}
		probe := false
		switch t.breaker.State() {
		case gobreaker.StateOpen:
			t.slots.give(free)
			from := t.opts.Now()
			t.sleep(ctx, t.breaker.probeDue())
			t.held(WaitingBreakerOpen, from)
			continue
		case gobreaker.StateHalfOpen:
			if t.breaker.probeOut() {
				// The probe is out; its result kicks us.
				t.slots.give(free)
				t.sleep(ctx, time.Time{})
				continue
			}
			probe = true
		}
		yield := t.opts.Busy != nil && t.opts.Busy() && t.backlog(ctx) < burstBacklog
		lim := claimLimits{free: free, probe: probe, yield: yield}
		if t.limiter != nil {
			lim.limited, lim.tokens = true, int(t.limiter.Tokens())
		} else if t.sharedRate() {
			lim.shared = max(t.set.RateLimit.Burst, 1)
		}
		n := claimSize(lim)
		t.slots.give(free - n)
		now := t.opts.Now()
		claims, err := t.store.Claim(ctx, t.set.Name, now, n)
		if err != nil {
			t.slots.give(n)
			if ctx.Err() != nil {
				return
			}
			if !storeFailing {
				t.log.Error("claim deliveries failed; retrying every second", "err", err)
				storeFailing = true
			}
			t.sleep(ctx, now.Add(time.Second))
			continue
		}
		storeFailing = false
		t.slots.give(n - len(claims))
		if len(claims) == 0 {
			t.idle(ctx)
			continue
		}
		if blocked := t.dispatch(ctx, actx, attempts, claims); blocked {
			t.sleep(ctx, time.Time{})
		} else if yield {
			// Paced per delivery claimed, so that a target whose limit
			// lets one out at a time still gets burstClaim per pause.
			t.pause(ctx, burstPause*time.Duration(len(claims))/burstClaim)
		} else if len(claims) < n {
			// Nothing else was due: claiming again at once would scan the
			// queue for nothing, as often as webhooks arrive.
			t.idle(ctx)
		}
	}
}

// idle waits, nothing being due now, for the next due delivery (a retry)
// or a kick (a new one).
func (t *target) idle(ctx context.Context) {
	t.backlog(ctx) // the gauge shows what is left, e.g. retries
	due, ok, err := t.store.NextDue(ctx, t.set.Name)
	if err != nil || !ok {
		due = time.Time{}
	}
	t.sleep(ctx, due)
}

// claimLimits are what bounds one claim of a feeder.
type claimLimits struct {
	free    int  // slots taken, at least 1
	probe   bool // the breaker is half-open and its probe not out: one decides
	yield   bool // ingress is taking in a burst: leave it the CPU
	limited bool // the target has a rate limiter of its own, ...
	tokens  int  // ... with these tokens now (negative when in debt)
	shared  int  // the burst of a rate limit shared by every relay; 0 without one
}

// claimSize returns how many deliveries to claim, at least 1 and at most
// l.free: one for a half-open breaker's probe; at most burstClaim while
// yielding; no more than the own limiter lets go now (the rest would wait,
// held); no more than a shared limit's burst (the rest would wait, held,
// while other relays could have sent them).
func claimSize(l claimLimits) int {
	n := l.free
	if l.probe {
		n = 1
	}
	if l.yield {
		n = min(n, burstClaim)
	}
	switch {
	case l.limited:
		n = min(n, max(l.tokens, 1))
	case l.shared > 0:
		n = min(n, l.shared)
	}
	return n
}

// backlog returns the target's pending deliveries and exports the count.
func (t *target) backlog(ctx context.Context) int {
	n, err := t.store.Backlog(ctx, t.set.Name)
	if err != nil {
		return 0
	}
	t.pending.Set(float64(max(0, n-int(t.attemptsOut.Load()))))
	return n
}

// pause waits for d or ctx, ignoring kicks.
func (t *target) pause(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// dispatch starts an attempt for each claim, one slot each, as the rate
// limiter and the breaker let them go. Those that may not go now are
// released uncharged, and dispatch reports that the breaker blocked them.
func (t *target) dispatch(ctx, actx context.Context, attempts *sync.WaitGroup, claims []Claim) (blocked bool) {
	for i, c := range claims {
		if t.expired(actx, c) {
			continue
		}
		out, de := t.build(actx, c.Event)
		if de != nil {
			t.kill(actx, c, de)
			t.slots.give(1)
			continue
		}
		paceFrom := t.opts.Now()
		if err := t.pace(ctx); err != nil {
			t.release(actx, claims[i:], t.opts.Now())
			return false
		}
		why, waited := t.waitOf(&c.Delivery, t.opts.Now().Sub(paceFrom))
		done, err := t.breaker.Allow()
		if err != nil {
			// Opened (or a probe is out) since the claim: not attempted,
			// not charged.
			t.release(actx, claims[i:], t.opts.Now())
			return true
		}
		t.inFlight.Inc()
		t.attemptsOut.Add(1)
		j := job{c: c, out: out, done: done, why: why, waited: waited}
		select {
		case t.jobs <- j: // an idle worker took it
		default:
			attempts.Go(func() { t.work(ctx, actx, j) })
		}
	}
	return false
}

// job is an attempt handed to a worker.
type job struct {
	c      Claim
	out    *shape.Request
	done   func(error)
	why    string
	waited time.Duration
}

// workerIdle is how long an idle worker waits for another attempt.
const workerIdle = 10 * time.Second

// work runs j, then the attempts the feeder hands it, until it is idle for
// workerIdle or ctx (the feeder's) ends. Workers outlive their attempts so
// that each attempt does not start a goroutine whose stack grows again
// through the HTTP client and the store. Each attempt holds a slot, so a
// target has at most about max_in_flight workers.
func (t *target) work(ctx, actx context.Context, j job) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		t.attempt(actx, j.c, j.out, j.done, j.why, j.waited)
		t.attemptsOut.Add(-1)
		t.inFlight.Dec()
		t.slots.give(1)
		// A feeder short of slots takes this one without a kick. One that
		// sleeps while a half-open breaker's probe is out waits for its
		// result, even one that changed no state (cut off by a shutdown).
		// Else a kick per attempt would only make it scan the queue for
		// nothing as often as attempts end.
		if t.breaker.State() != gobreaker.StateClosed {
			t.kick()
		}
		idle.Reset(workerIdle)
		select {
		case j = <-t.jobs:
		case <-idle.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// sharedRate reports whether t's rate limit is the one shared by every
// relay.
func (t *target) sharedRate() bool {
	return t.opts.Reserve != nil && t.set.RateLimit.RPS > 0
}

// pace waits for the target's rate limit to let one attempt go: its own
// limiter, or the one shared by every relay. It fails only with ctx.
func (t *target) pace(ctx context.Context) error {
	if t.limiter != nil {
		return t.limiter.Wait(ctx)
	}
	if !t.sharedRate() {
		return nil
	}
	for {
		wait, err := t.opts.Reserve(ctx, t.set.Name, t.set.RateLimit.RPS, t.set.RateLimit.Burst)
		if err == nil && wait <= 0 {
			return nil
		}
		if err != nil {
			// The shared limit's store is down: wait a little rather than
			// send unpaced; the claim itself will fail soon if it stays down.
			wait = time.Second
		}
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
		if err == nil {
			return nil // the token was reserved for now
		}
	}
}

// release ends the hold on claims, uncharged; not even a shutdown's
// timeout cuts the write, which gives them back to other relays.
func (t *target) release(ctx context.Context, claims []Claim, at time.Time) {
	ds := make([]Delivery, len(claims))
	for i, c := range claims {
		ds[i] = c.Delivery
	}
	if err := t.store.Release(context.WithoutCancel(ctx), at, ds...); err != nil {
		t.log.Error("release deliveries", "err", err)
	}
	t.slots.give(len(claims))
}

// expired completes a claim that passed max_age as dead, without an attempt.
func (t *target) expired(actx context.Context, c Claim) bool {
	now := t.opts.Now()
	if now.Sub(c.Delivery.BudgetSince) <= t.set.Retry.MaxAge {
		return false
	}
	t.kill(actx, c, errors.New("max_age passed before the attempt could start"))
	t.slots.give(1)
	return true
}
