package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// replayer runs the replays of one relay, each in a goroutine of its own
// that works in small batches, paced, so that ingest never waits on it.
// After each batch it stores its cursor and counts: a replay cut off (a
// shutdown, a crash) resumes after the last batch stored, and the
// deliveries that carry its id are not requeued again.
type replayer struct {
	s     *Server
	store Replays // nil: the store keeps no replays
	log   *slog.Logger

	ctx  context.Context // ends at shutdown
	stop context.CancelFunc

	mu      sync.Mutex
	running map[string]*replayRun
	wg      sync.WaitGroup
}

// replayRun is a replay running in this process.
type replayRun struct {
	cancel context.CancelCauseFunc
	done   chan struct{}
}

// errReplayCancelled is the cause that ends a cancelled replay's context.
var errReplayCancelled = errors.New("replay cancelled")

// replayBatchMax bounds the events of one batch: one store write of their
// swaps and one of the progress.
const replayBatchMax = 100

// replayRetries is how often a batch that the store refused is tried
// again, with a growing wait, before the replay fails.
const replayRetries = 5

func newReplayer(s *Server) *replayer {
	ctx, stop := context.WithCancel(context.Background())
	rp := &replayer{s: s, log: s.log, ctx: ctx, stop: stop, running: map[string]*replayRun{}}
	rp.store, _ = s.store.(Replays)
	return rp
}

// resume starts every replay that was running when the relay stopped.
func (rp *replayer) resume() {
	if rp.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(rp.ctx, 10*time.Second)
	rs, err := rp.store.ListReplays(ctx, MaxLimit)
	cancel()
	if err != nil {
		rp.log.Error("list replays to resume; those running stay stopped until the next start", "err", err)
		return
	}
	for _, r := range rs {
		if r.State == ReplayRunning {
			rp.log.Info("replay resumed", "replay_id", r.ID, "events_done", r.EventsDone, "events_total", r.EventsTotal)
			rp.start(r)
		}
	}
}

// shutdown stops the running replays, which stay running in the store,
// and waits for their goroutines.
func (rp *replayer) shutdown() {
	rp.stop()
	rp.wg.Wait()
}

// start runs r in a goroutine of its own.
func (rp *replayer) start(r Replay) {
	ctx, cancel := context.WithCancelCause(rp.ctx)
	run := &replayRun{cancel: cancel, done: make(chan struct{})}
	rp.mu.Lock()
	if _, ok := rp.running[r.ID]; ok || rp.ctx.Err() != nil {
		rp.mu.Unlock()
		cancel(nil)
		return
	}
	rp.running[r.ID] = run
	rp.wg.Add(1)
	rp.mu.Unlock()
	go func() {
		defer rp.wg.Done()
		defer close(run.done)
		defer func() {
			rp.mu.Lock()
			delete(rp.running, r.ID)
			rp.mu.Unlock()
			cancel(nil)
		}()
		rp.run(ctx, r)
	}()
}

// cancel stops replay id: the goroutine running it here, if any, and its
// record, for the relay that runs it when another does (a shared store).
func (rp *replayer) cancel(ctx context.Context, id string) (Replay, error) {
	rp.mu.Lock()
	run := rp.running[id]
	rp.mu.Unlock()
	if run != nil {
		run.cancel(errReplayCancelled)
		select {
		case <-run.done:
		case <-ctx.Done():
			return Replay{}, ctx.Err()
		}
	}
	r, err := rp.store.LoadReplay(ctx, id)
	if err != nil || r.State != ReplayRunning {
		return r, err
	}
	r.State, r.FinishedAt = ReplayCancelled, time.Now()
	if err := rp.store.UpdateReplay(ctx, r); err != nil {
		return r, err
	}
	rp.log.Info("replay cancelled", "replay_id", id, "events_done", r.EventsDone, "events_total", r.EventsTotal, "deliveries", r.Deliveries)
	return r, nil
}

// batchSize is how many events a replay at rate events a second handles
// per batch: about a second's worth, at least 1, at most replayBatchMax.
func batchSize(rate float64) int {
	return max(1, min(replayBatchMax, int(rate)))
}

// run works r until it is done, cancelled, failed, or the relay stops.
func (rp *replayer) run(ctx context.Context, r Replay) {
	if r.Cursor == "" && r.EventsDone == 0 {
		ok, _ := rp.retry(ctx, &r, func() error {
			var err error
			r.EventsTotal, _, err = rp.count(ctx, &r, false)
			return err
		})
		if !ok || !rp.save(ctx, &r) {
			return
		}
	}
	n := batchSize(r.Rate)
	lim := rate.NewLimiter(rate.Limit(r.Rate), n)
	for {
		var page []EventSummary
		ok, _ := rp.retry(ctx, &r, func() error {
			var err error
			page, err = replayPage(ctx, rp.s.store, &r, r.Cursor, n)
			return err
		})
		if !ok {
			return
		}
		if len(page) == 0 {
			r.State, r.FinishedAt = ReplayDone, time.Now()
			if rp.save(ctx, &r) {
				rp.log.Info("replay done", "replay_id", r.ID, "events", r.EventsDone, "deliveries", r.Deliveries)
			}
			return
		}
		if err := lim.WaitN(ctx, len(page)); err != nil || !rp.yield(ctx) {
			rp.ended(ctx, &r)
			return
		}
		var added int
		if ok, _ := rp.retry(ctx, &r, func() error {
			var err error
			added, err = rp.batch(ctx, &r, page)
			return err
		}); !ok {
			return
		}
		r.Deliveries += added
		r.EventsDone += len(page)
		r.Cursor = page[len(page)-1].Event.ID
		if !rp.save(ctx, &r) {
			return
		}
	}
}

// Yielding to a burst of webhooks: while the ingress is busy a replay
// waits up to replayYield before each batch, a slice at a time, so that
// acking webhooks comes first and the replay still moves.
const (
	replayYield      = time.Second
	replayYieldSlice = 50 * time.Millisecond
)

// yield waits while the ingress is busy, up to replayYield; it reports
// false when ctx ended.
func (rp *replayer) yield(ctx context.Context) bool {
	for waited := time.Duration(0); waited < replayYield; waited += replayYieldSlice {
		if in := rp.s.ingress.Load(); in == nil || !in.Busy() {
			return true
		}
		select {
		case <-time.After(replayYieldSlice):
		case <-ctx.Done():
			return false
		}
	}
	return ctx.Err() == nil
}

// retry calls fn until it succeeds, replayRetries times at most, waiting
// longer each time. It reports false when r stopped meanwhile (cancelled,
// shut down) or failed: then nothing more is to be done.
func (rp *replayer) retry(ctx context.Context, r *Replay, fn func() error) (bool, error) {
	wait := time.Second
	for try := 0; ; try++ {
		err := fn()
		if err == nil {
			return true, nil
		}
		if ctx.Err() != nil {
			rp.ended(ctx, r)
			return false, err
		}
		if try == replayRetries {
			r.State, r.FinishedAt, r.Error = ReplayFailed, time.Now(), err.Error()
			rp.log.Error("replay failed", "replay_id", r.ID, "err", err)
			rp.save(context.WithoutCancel(ctx), r)
			return false, err
		}
		rp.log.Warn("replay batch failed; trying again", "replay_id", r.ID, "in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			rp.ended(ctx, r)
			return false, ctx.Err()
		}
		wait *= 2
	}
}

// ended handles a replay whose context ended: a cancel records it (the
// progress of the last batch stored), a shutdown leaves it running, for the
// next start to resume.
func (rp *replayer) ended(ctx context.Context, r *Replay) {
	if context.Cause(ctx) != errReplayCancelled {
		return
	}
	r.State, r.FinishedAt = ReplayCancelled, time.Now()
	rp.save(context.WithoutCancel(ctx), r)
}

// save stores r's progress and reports whether r goes on: not when the
// record says it stopped (cancelled by another relay on the same store) or
// the store refused the write (the batch is then done again on resume, and
// skips what it did).
func (rp *replayer) save(ctx context.Context, r *Replay) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if r.State == ReplayRunning {
		if cur, err := rp.store.LoadReplay(ctx, r.ID); err == nil && cur.State != ReplayRunning {
			return false
		}
	}
	if err := rp.store.UpdateReplay(ctx, *r); err != nil {
		rp.log.Error("store replay progress; the replay stops here and resumes at the next start", "replay_id", r.ID, "err", err)
		return false
	}
	return r.State == ReplayRunning
}

// batch stores the swaps of the events of page and returns how many
// deliveries r requeued or created (or had before a restart).
func (rp *replayer) batch(ctx context.Context, r *Replay, page []EventSummary) (int, error) {
	set := rp.s.settings.Load()
	var swaps []Swap
	done := 0
	now := time.Now()
	for _, e := range page {
		ts, err := replayTargets(ctx, rp.s.store, set, r, e.Event)
		if err != nil {
			return 0, err
		}
		sw, mine := replaySwaps(e, ts, r.ID, now)
		swaps = append(swaps, sw...)
		done += mine
	}
	if len(swaps) == 0 {
		return done, nil
	}
	n, err := rp.s.store.SwapDeliveries(ctx, swaps...)
	if err != nil {
		return 0, fmt.Errorf("replay %s: %w", r.ID, err)
	}
	if n < len(swaps) {
		// Some changed meanwhile (an attempt ended, a retry): each is
		// looked at again, and those that carry r's id now were stored.
		n = 0
		for _, sw := range swaps {
			ok, err := rp.again(ctx, r, sw.New.EventID, sw.New.Target)
			if err != nil {
				return 0, err
			}
			if ok {
				n++
			}
		}
	}
	kicked := map[string]bool{}
	for _, sw := range swaps {
		if !kicked[sw.New.Target] {
			kicked[sw.New.Target] = true
			rp.s.dispatcher.Kick(sw.New.Target)
		}
	}
	return done + n, nil
}

// again handles one (event, target) of r whose swap was refused, and
// reports whether the delivery now carries r's id.
func (rp *replayer) again(ctx context.Context, r *Replay, eventID, target string) (bool, error) {
	id := DeliveryID(eventID, target)
	for range maxSwapTries {
		d, held, err := rp.s.store.LoadDelivery(ctx, id)
		var sw Swap
		switch {
		case errors.Is(err, ErrNotFound):
			ev, err := rp.s.store.Event(ctx, eventID)
			if err != nil {
				return false, err
			}
			sw = Swap{New: replayedDelivery(NewDelivery(ev.Event, target), r.ID, time.Now())}
		case err != nil:
			return false, err
		case d.Replay == r.ID:
			return true, nil
		case held || d.State == Pending:
			return false, nil // left alone, as a pending one is
		default:
			sw = Swap{Old: &d, New: replayedDelivery(d, r.ID, time.Now())}
		}
		n, err := rp.s.store.SwapDeliveries(ctx, sw)
		if err != nil {
			return false, err
		}
		if n == 1 {
			return true, nil
		}
	}
	return false, nil // its record keeps changing: left as it is
}

// count goes over the events of r and returns how many there are and,
// with swaps, how many deliveries a run would requeue or create: the dry
// run, and a replay's events_total. Without swaps (a running replay's
// count) it yields to a busy ingress between pages, as batches do.
func (rp *replayer) count(ctx context.Context, r *Replay, swaps bool) (events, deliveries int, err error) {
	set := rp.s.settings.Load()
	after := ""
	for {
		if !swaps && !rp.yield(ctx) {
			return events, deliveries, ctx.Err()
		}
		page, err := replayPage(ctx, rp.s.store, r, after, MaxLimit)
		if err != nil || len(page) == 0 {
			return events, deliveries, err
		}
		events += len(page)
		after = page[len(page)-1].Event.ID
		if !swaps {
			continue
		}
		for _, e := range page {
			ts, err := replayTargets(ctx, rp.s.store, set, r, e.Event)
			if err != nil {
				return events, deliveries, err
			}
			sw, _ := replaySwaps(e, ts, r.ID, time.Now())
			deliveries += len(sw)
		}
	}
}
