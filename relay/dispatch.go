package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

// Dispatcher delivers stored deliveries to their targets. Each target has its
// own feeder goroutine, concurrency cap, rate limiter and circuit breaker, so
// that one slow or failing target never delays another.
//
// Run it once; it owns every goroutine it starts. It is safe for concurrent
// use.
type Dispatcher struct {
	store   Store
	log     *slog.Logger
	metrics *Metrics
	opts    DispatcherOptions

	mu      sync.Mutex
	targets map[string]*target
	paused  map[string]bool // by operators; kept across reloads
	// launch starts a target's feeder under Run's contexts; it is set
	// while Run claims deliveries, nil before and after.
	launch  func(*target)
	stopped bool // Run stopped claiming: nothing starts again
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
	// Reserve, when set, replaces each target's own rate limiter with one
	// shared by every relay (a Redis store's): it reserves a token of
	// target's rate limit and says how long to wait before using it.
	Reserve func(ctx context.Context, target string, rps float64, burst int) (time.Duration, error)
	// OnBreakerChange, when set, is told of every change of a target's
	// breaker ("closed", "half-open", "open"), after it is logged and
	// exported. OnDead, when set, is told of every delivery that goes dead,
	// once its outcome is handed to the store. Both are called from the
	// dispatcher's goroutines and must not block.
	OnBreakerChange func(target, from, to string)
	OnDead          func(Delivery)
	// Tracer starts each attempt's span; nil makes the ids only.
	Tracer Tracer
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
	if opts.Tracer == nil {
		opts.Tracer = ids{}
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
		t, err := newTarget(tc, d.store, d.opts)
		if err != nil {
			return nil, fmt.Errorf("targets[%d] (%s): %w", i, tc.Name, err)
		}
		d.targets[tc.Name] = t
	}
	return d, nil
}

// errStopped refuses a reconfiguration once the dispatcher has stopped:
// it would start feeders that nothing waits for.
var errStopped = errors.New("the dispatcher has stopped (shutting down)")

// Run starts a feeder per target, with the pauses the store kept, and
// delivers until ctx ends. Then it stops claiming and waits for the
// attempts in flight until drain ends; those still running then are
// cancelled and their deliveries returned to the queue without being
// charged an attempt, and Run says so. It also waits, until drain ends,
// for the outcomes a store that queues them (OutcomeQueue) has yet to
// write; those left are the store's, whose Close writes them. It returns
// once every goroutine it started has ended. ctx's values (not its end)
// reach the attempts.
func (d *Dispatcher) Run(ctx, drain context.Context) error {
	// Attempts outlive ctx: they end on their own, or when drain does.
	actx, abort := context.WithCancel(context.WithoutCancel(ctx))
	defer abort()
	var feeders, attempts sync.WaitGroup
	var outcomes writes
	paused, err := d.store.Paused(ctx)
	if err != nil {
		// Starting unpaused would send what an operator held back.
		d.log.Error("read paused targets; every target starts paused until the store answers", "err", err)
	}
	d.mu.Lock()
	if d.launch != nil || d.stopped {
		d.mu.Unlock()
		return errors.New("dispatcher: Run called twice")
	}
	d.launch = func(t *target) {
		name := t.set.Name
		t.paused.Store(d.paused[name])
		d.metrics.TargetsPaused.WithLabelValues(name).Set(b2f(d.paused[name]))
		// A context of its own, so that a reload can stop it alone.
		fctx, stop := context.WithCancel(ctx)
		t.stopFeeding, t.writes = stop, &outcomes
		feeders.Go(func() { t.feed(fctx, actx, &attempts) })
	}
	for _, t := range d.targets {
		if err != nil || paused[t.set.Name] {
			d.paused[t.set.Name] = true
		}
		d.launch(t)
	}
	d.mu.Unlock()
	if err != nil {
		feeders.Go(func() { d.loadPaused(ctx) })
	}
	feeders.Go(func() { d.gauges(ctx) })

	<-ctx.Done()
	d.mu.Lock()
	d.launch, d.stopped = nil, true
	d.mu.Unlock()
	done := make(chan struct{})
	go func() {
		feeders.Wait()
		attempts.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-drain.Done():
		abort()
		<-done
		return fmt.Errorf("dispatcher shutdown: %w; attempts in flight were returned to the queue", drain.Err())
	}
	select {
	case <-outcomes.wait():
		return nil
	case <-drain.Done():
		return fmt.Errorf("dispatcher shutdown: %w; outcomes not yet written stay with the store, whose Close writes them", drain.Err())
	}
}

// writes counts the outcomes handed to a store that queues them
// (OutcomeQueue) and not yet written, for Run to wait for.
type writes struct {
	n    atomic.Int64
	mu   sync.Mutex
	zero chan struct{} // set while waited for: closed when n reaches 0
}

func (w *writes) add() { w.n.Add(1) }

func (w *writes) done() {
	if w.n.Add(-1) != 0 {
		return
	}
	w.mu.Lock()
	if w.zero != nil {
		close(w.zero)
		w.zero = nil
	}
	w.mu.Unlock()
}

// wait returns a channel closed once no write is outstanding; nothing may
// add one from then on.
func (w *writes) wait() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	ch := make(chan struct{})
	if w.n.Load() == 0 {
		close(ch)
	} else {
		w.zero = ch
	}
	return ch
}

// loadPaused reads the pause marks until the store answers, then lifts the
// pauses that Run imposed for want of them.
func (d *Dispatcher) loadPaused(ctx context.Context) {
	for {
		select {
		case <-time.After(time.Second):
		case <-ctx.Done():
			return
		}
		paused, err := d.store.Paused(ctx)
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

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Pause stops (or with false, restarts) claiming deliveries of target:
// its queue stays, attempts in flight finish. The mark is kept in the
// store first, so that a restart keeps it too (a pause that is not kept
// would be lifted by a restart without anyone asking); when the store
// fails, nothing changes and Pause returns its error. A target that is not
// configured keeps only the mark, which applies if it comes back.
func (d *Dispatcher) Pause(ctx context.Context, target string, paused bool) error {
	if err := d.store.SetPaused(ctx, target, paused); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if t, ok := d.targets[target]; ok {
		d.setPaused(t, paused)
	}
	return nil
}

// setPaused is Pause with d.mu held.
func (d *Dispatcher) setPaused(t *target, paused bool) {
	d.paused[t.set.Name] = paused
	t.paused.Store(paused)
	d.metrics.TargetsPaused.WithLabelValues(t.set.Name).Set(b2f(paused))
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
// new target cannot be built, nor once Run has stopped claiming.
func (d *Dispatcher) Reconfigure(targets []TargetSettings) error {
	d.mu.Lock()
	old, stopped := d.targets, d.stopped
	d.mu.Unlock()
	if stopped {
		return errStopped
	}
	next := make(map[string]*target, len(targets))
	var fresh []*target
	for i, tc := range targets {
		if t, ok := old[tc.Name]; ok && reflect.DeepEqual(t.set, tc) {
			next[tc.Name] = t
			continue
		}
		t, err := newTarget(tc, d.store, d.opts)
		if err != nil {
			return fmt.Errorf("targets[%d] (%s): %w", i, tc.Name, err)
		}
		next[tc.Name] = t
		fresh = append(fresh, t)
	}
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return errStopped
	}
	d.targets = next
	if d.launch != nil {
		for _, t := range fresh {
			d.launch(t)
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
				d.metrics.QueueDepth.WithLabelValues(tg.set.Name, "dead").Set(float64(counts[tg.set.Name].Dead))
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
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
