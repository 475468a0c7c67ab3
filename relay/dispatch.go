package relay

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"time"
)

// Dispatcher delivers stored deliveries to their targets. Each target has its
// own feeder goroutine, concurrency cap, rate limiter and circuit breaker, so
// that one slow or failing target never delays another.
//
// Start it once; Shutdown stops it. It is safe for concurrent use.
type Dispatcher struct {
	store   Store
	log     *slog.Logger
	metrics *Metrics
	opts    DispatcherOptions

	mu      sync.Mutex
	targets map[string]*target
	paused  map[string]bool // by operators; kept across reloads

	ctx      context.Context    // stops claiming
	stop     context.CancelFunc //
	abort    context.CancelFunc // cancels attempts in flight
	abortCtx context.Context
	wg       sync.WaitGroup // feeders
	attempts sync.WaitGroup // attempts in flight
}

// DispatcherOptions tune a Dispatcher. The zero value is usable.
type DispatcherOptions struct {
	Logger  *slog.Logger // nil discards
	Metrics *Metrics     // nil keeps unexported metrics
	// UserAgent is sent with every attempt; "" means "hooxrelay".
	UserAgent string
	// PollInterval bounds how long an idle target waits before asking the
	// store again, for work that other processes queue; 0 means 5s.
	PollInterval time.Duration
	// Busy, when set, reports that ingress is taking in a burst: each
	// target then claims at most burstClaim deliveries per burstPause, so
	// that acking webhooks (which Hoox gives up on) comes before delivering
	// them (which the queue keeps). nil never yields.
	Busy func() bool
	// Limit, when set, replaces each target's own rate limiter with one
	// shared by every relay (a Redis store's): it reserves a token of
	// target's limit and says how long to wait before using it.
	Limit func(ctx context.Context, target string, rps float64, burst int) (time.Duration, error)
	// Now and Rand are the clock and the jitter source; nil means the real ones.
	Now  func() time.Time
	Rand func() float64
}

// NewDispatcher returns a dispatcher for targets over store. It fails when
// a target's TLS files cannot be loaded.
func NewDispatcher(store Store, targets []TargetSettings, opts DispatcherOptions) (*Dispatcher, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "hooxrelay"
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 5 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = defaultRand
	}
	d := &Dispatcher{
		store:   store,
		log:     opts.Logger,
		metrics: opts.Metrics,
		opts:    opts,
		targets: make(map[string]*target, len(targets)),
		paused:  make(map[string]bool),
	}
	for i, tc := range targets {
		t, err := d.newTarget(tc)
		if err != nil {
			return nil, fmt.Errorf("targets[%d] (%s): %w", i, tc.Name, err)
		}
		d.targets[tc.Name] = t
	}
	return d, nil
}

// Start launches a feeder per target, with the pauses the store kept. ctx
// carries values only; stop the dispatcher with Shutdown.
func (d *Dispatcher) Start(ctx context.Context) {
	d.ctx, d.stop = context.WithCancel(context.WithoutCancel(ctx))
	d.abortCtx, d.abort = context.WithCancel(context.WithoutCancel(ctx))
	paused, err := d.store.Paused(ctx)
	if err != nil {
		// Starting unpaused would send what an operator held back.
		d.log.Error("read paused targets; every target starts paused until the store answers", "err", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, t := range d.targets {
		if err != nil || paused[t.cfg.Name] {
			d.paused[t.cfg.Name] = true
		}
		d.startFeeder(t)
	}
	if err != nil {
		d.wg.Add(1)
		go d.loadPaused()
	}
	d.wg.Add(1)
	go d.gauges(d.ctx)
}

// loadPaused reads the pause marks until the store answers, then lifts the
// pauses that Start imposed for want of them.
func (d *Dispatcher) loadPaused() {
	defer d.wg.Done()
	for {
		select {
		case <-time.After(time.Second):
		case <-d.ctx.Done():
			return
		}
		paused, err := d.store.Paused(d.ctx)
		if err != nil {
			continue
		}
		d.mu.Lock()
		for name, t := range d.targets {
			if !paused[name] {
				d.setPaused(t, false)
			}
		}
		d.mu.Unlock()
		return
	}
}

// startFeeder starts t's feeder under a context of its own, so that a
// reload can stop it alone. Called with d.mu held.
func (d *Dispatcher) startFeeder(t *target) {
	t.paused.Store(d.paused[t.cfg.Name])
	d.metrics.TargetsPaused.WithLabelValues(t.cfg.Name).Set(b2f(d.paused[t.cfg.Name]))
	var ctx context.Context
	ctx, t.stopFeeding = context.WithCancel(d.ctx)
	d.wg.Add(1)
	go t.feed(ctx)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Pause stops (or with false, restarts) claiming deliveries of target: its
// queue stays, attempts in flight finish. It reports false for a target
// that is not configured. The caller keeps the mark in the store.
func (d *Dispatcher) Pause(target string, paused bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	t, ok := d.targets[target]
	if !ok {
		return false
	}
	d.setPaused(t, paused)
	return true
}

// setPaused is Pause with d.mu held.
func (d *Dispatcher) setPaused(t *target, paused bool) {
	d.paused[t.cfg.Name] = paused
	t.paused.Store(paused)
	d.metrics.TargetsPaused.WithLabelValues(t.cfg.Name).Set(b2f(paused))
	t.kick()
}

// Paused reports whether target is paused.
func (d *Dispatcher) Paused(target string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.paused[target]
}

// Reconfigure replaces the targets: new ones start, removed ones stop
// claiming (their attempts in flight finish and are recorded; their queued
// deliveries stay stored), changed ones are replaced by a fresh target with
// the new settings, unchanged ones go on untouched. Nothing changes when a
// new target cannot be built.
func (d *Dispatcher) Reconfigure(targets []TargetSettings) error {
	d.mu.Lock()
	old := d.targets
	d.mu.Unlock()
	next := make(map[string]*target, len(targets))
	var fresh []*target
	for i, tc := range targets {
		if t, ok := old[tc.Name]; ok && reflect.DeepEqual(t.cfg, tc) {
			next[tc.Name] = t
			continue
		}
		t, err := d.newTarget(tc)
		if err != nil {
			return fmt.Errorf("targets[%d] (%s): %w", i, tc.Name, err)
		}
		next[tc.Name] = t
		fresh = append(fresh, t)
	}
	d.mu.Lock()
	d.targets = next
	if d.ctx != nil {
		for _, t := range fresh {
			d.startFeeder(t)
		}
	}
	d.mu.Unlock()
	for name, t := range old {
		if next[name] == t {
			continue
		}
		if t.stopFeeding != nil {
			t.stopFeeding()
		}
		if _, kept := next[name]; !kept {
			for _, st := range []string{"pending", "in_flight", "dead"} {
				d.metrics.QueueDepth.DeleteLabelValues(name, st)
			}
			d.metrics.BreakerState.DeleteLabelValues(name)
			d.metrics.TargetsPaused.DeleteLabelValues(name)
		}
	}
	return nil
}

// gaugeInterval is how often queue depths are read for the metrics, so
// that they move even while a saturated target's feeder is blocked.
const gaugeInterval = time.Second

func (d *Dispatcher) gauges(ctx context.Context) {
	defer d.wg.Done()
	t := time.NewTicker(gaugeInterval)
	defer t.Stop()
	for {
		d.mu.Lock()
		ts := make([]*target, 0, len(d.targets))
		for _, tg := range d.targets {
			ts = append(ts, tg)
		}
		d.mu.Unlock()
		for _, tg := range ts {
			tg.backlog(ctx)
		}
		if counts, err := d.store.Counts(ctx); err == nil {
			for _, tg := range ts {
				d.metrics.QueueDepth.WithLabelValues(tg.cfg.Name, "dead").Set(float64(counts[tg.cfg.Name].Dead))
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// Shutdown stops claiming deliveries and waits for the attempts in flight.
// When ctx ends first, those attempts are cancelled and their deliveries
// returned to the queue without being charged an attempt.
func (d *Dispatcher) Shutdown(ctx context.Context) error {
	if d.stop == nil {
		return nil
	}
	d.stop()
	done := make(chan struct{})
	go func() {
		d.wg.Wait()
		d.attempts.Wait()
		close(done)
	}()
	select {
	case <-done:
		d.abort()
		return nil
	case <-ctx.Done():
		d.abort()
		<-done
		return fmt.Errorf("dispatcher shutdown: %w; attempts in flight were returned to the queue", ctx.Err())
	}
}

// Kick tells target's feeder that deliveries may have become due.
func (d *Dispatcher) Kick(target string) {
	d.mu.Lock()
	t := d.targets[target]
	d.mu.Unlock()
	if t != nil {
		t.kick()
	}
}

// BreakerState returns the breaker state of a target: "closed", "open" or
// "half-open", and "" for an unknown target.
func (d *Dispatcher) BreakerState(name string) string {
	d.mu.Lock()
	t := d.targets[name]
	d.mu.Unlock()
	if t == nil {
		return ""
	}
	return t.breaker.State().String()
}
