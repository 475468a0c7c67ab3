// Package boltstore is the embedded relay.Store: one bbolt file, no server.
//
// Every write goes through one committer goroutine that gathers the writes
// waiting at that moment into a single transaction (group commit), so
// concurrent requests share an fsync instead of queueing for one each. The
// queue of pending deliveries is indexed in memory and rebuilt from the file
// on open; claims are held in memory only, so deliveries that were in flight
// when the process died are simply pending again at the next start.
package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var _ relay.Store = (*Store)(nil)

// Bucket names. Keys: events by event id; deliveries by delivery id;
// attempts by delivery id, NUL, 4-byte attempt number; dedup by source,
// NUL, dedup key. Values: see codec.go.
var (
	bktEvents     = []byte("events") // value: see encodeEvent
	bktDeliveries = []byte("deliveries")
	bktAttempts   = []byte("attempts")
	bktDedup      = []byte("dedup") // value: event id
	bktMeta       = []byte("meta")

	metaMarksPruned = []byte("marks_pruned_through") // event id
	allBuckets      = [][]byte{bktEvents, bktDeliveries, bktAttempts, bktDedup, bktMeta}
)

// Options tune a Store. The zero value is usable.
type Options struct {
	// Logger receives pruning and commit errors; nil discards them.
	Logger *slog.Logger
	// Retention is how long delivered and dead events are kept, counted
	// from their receive time; 0 keeps them forever.
	Retention time.Duration
	// DedupTTL is how long dedup marks are kept once expired marks are
	// pruned; marks older than the ttl given to Ingest are ignored anyway.
	// 0 never prunes them.
	DedupTTL time.Duration
	// PruneInterval is how often pruning runs; 0 means one minute.
	PruneInterval time.Duration
	// MaxBatch caps the writes that share one commit; 0 means 1024.
	MaxBatch int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// BeforeCommit, when set, runs in the committer before each
	// transaction, its writes already taken. Tests use it to hold the
	// disk still; nil in production.
	BeforeCommit func()
}

// Store is the embedded store. It is safe for concurrent use.
type Store struct {
	db   *bolt.DB
	opts Options
	log  *slog.Logger

	writes chan *write
	stop   chan struct{}
	wg     sync.WaitGroup

	// closeMu orders Close after every write being queued, so that none is
	// queued once the committer has drained and stopped.
	closeMu sync.RWMutex
	closed  bool

	// commitErr is the error of the last commit, nil once one succeeds:
	// Ping reports it, so that readiness follows a failing disk.
	commitErr atomic.Pointer[error]
	// busySince is when the transaction being committed started (unix
	// nanoseconds), 0 between commits: a disk that stopped answering shows
	// as a commit that does not end.
	busySince atomic.Int64

	// ctx ends when Close starts; background work watches it.
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex // guards queues, finished, freshBytes and deferred
	queues map[string]*queue
	// finished indexes each target's delivered and dead deliveries, so
	// that counts and dead letters are answered without a scan.
	finished map[string]*finished
	// freshBytes is the payload memory held by fresh queue items.
	freshBytes int
	// deferred holds completed outcomes not yet written: they ride along
	// with a later commit instead of each costing one (see Complete).
	deferred      []*write
	deferredSince time.Time
	deferKick     chan struct{}
}

// appendFill is how full bbolt packs the leaves of the buckets whose keys
// only grow (events and attempts are keyed by time-sorted ids and never
// rewritten): its default, half full, suits random inserts and doubles the
// file for these.
const appendFill = 0.9

// Deferred outcomes are written once this many wait, once the oldest has
// waited deferDelay, or at once when no ingest is waiting. Past
// maxDeferred, Complete waits for its write.
const (
	// maxFreshBytes bounds the payloads kept in memory for first claims;
	// past it, claims read from disk and memory stays flat with the backlog.
	maxFreshBytes = 32 << 20

	deferBatch  = 256
	deferDelay  = 20 * time.Millisecond
	maxDeferred = 8192
)

// write is one unit of a group commit. apply runs inside the shared
// transaction and must not fail for reasons of its own input, since a
// failure rolls the whole batch back (it is then retried alone). after runs
// once the commit is durable, with the store mutex held.
type write struct {
	apply func(tx *bolt.Tx) error
	after func()
	done  chan error // nil for deferred writes, which nobody waits for
	// failed runs, without the store mutex, when a deferred write could
	// not be committed.
	failed func(error)
	// state moves from queued to taken when the committer puts the write
	// in a transaction, or to withdrawn when its caller gives up first:
	// a withdrawn write is never applied, so its caller can say so.
	state atomic.Int32
	// abandonable writes (outcomes, probes) may be left by their caller
	// even once taken: nobody is told they were not written.
	abandonable bool
}

const (
	queued int32 = iota
	taken
	withdrawn
)

// Open opens or creates the store file at path (and its directory) and
// rebuilds the in-memory queue from it.
func Open(path string, opts Options) (*Store, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1024
	}
	if opts.PruneInterval <= 0 {
		opts.PruneInterval = time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: 2 * time.Second, // another process holds the file lock
		// The freelist is rebuilt on open instead of written at every
		// commit: fewer pages per fsync on the hot path.
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 1 << 30, // growing the map blocks readers; start big
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %q: the file is locked by another process (is a relay already running on it?)", path)
		}
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	s := &Store{
		db:        db,
		opts:      opts,
		log:       log,
		writes:    make(chan *write, opts.MaxBatch),
		deferKick: make(chan struct{}, 1),
		stop:      make(chan struct{}),
		queues:    make(map[string]*queue),
		finished:  make(map[string]*finished),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	if err := s.load(); err != nil {
		s.cancel()
		db.Close()
		return nil, fmt.Errorf("open store %q: %w", path, err)
	}
	s.wg.Add(2)
	go s.commitLoop()
	go s.pruneLoop()
	return s, nil
}

// load creates the buckets and indexes every pending delivery.
func (s *Store) load() error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		// Only the head of each record is read: this is a scan of every
		// delivery kept, so it must not decode them.
		return tx.Bucket(bktDeliveries).ForEach(func(k, v []byte) error {
			state, due, err := deliveryHead(v)
			if err != nil {
				return fmt.Errorf("delivery %q: %w", k, err)
			}
			id := string(k)
			_, target, ok := relay.SplitDeliveryID(id)
			if !ok {
				return fmt.Errorf("corrupt delivery key %q", k)
			}
			if state == relay.Pending {
				s.queue(target).put(id, due)
			} else {
				s.finishedOf(target).add(id, state)
			}
			return nil
		})
	})
}

func (s *Store) queue(target string) *queue {
	q, ok := s.queues[target]
	if !ok {
		q = newQueue()
		s.queues[target] = q
	}
	return q
}

// Close stops the committer after the writes already queued, and closes the
// file.
func (s *Store) Close() error {
	s.closeMu.Lock()
	if s.closed {
		s.closeMu.Unlock()
		return nil
	}
	s.closed = true
	s.closeMu.Unlock()
	s.cancel()
	close(s.stop)
	s.wg.Wait()
	return s.db.Close()
}

// stallAfter is how long a commit may run before Ping reports the store
// stuck: an fsync takes milliseconds, and a webhook gets 503 after 5s.
const stallAfter = 2 * time.Second

// Ping reports whether the store takes writes: it is open, no commit has
// been running for stallAfter, the last commit did not fail for the store's
// sake, and an empty commit (one fdatasync, shared with any other write
// waiting) completes before ctx ends.
func (s *Store) Ping(ctx context.Context) error {
	if s.isClosed() {
		return relay.ErrClosed
	}
	if since := s.busySince.Load(); since != 0 {
		if d := time.Since(time.Unix(0, since)); d > stallAfter {
			return fmt.Errorf("a write has been waiting on the disk for %s", d.Round(time.Second))
		}
	}
	if err := s.commitErr.Load(); err != nil {
		return fmt.Errorf("last write failed: %w", *err)
	}
	probe := &write{apply: func(*bolt.Tx) error { return nil }, abandonable: true}
	if err := s.submit(ctx, probe); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	return nil
}

// Unwritten reports what the store holds that is not on disk yet: writes
// queued or being committed (ingests, whose senders have no answer yet, and
// operator actions) and outcomes deferred to a later commit (deliveries
// attempted again if they are lost). A Close that the disk holds up is
// reported with it.
func (s *Store) Unwritten() (writes, outcomes int) {
	s.mu.Lock()
	outcomes = len(s.deferred)
	s.mu.Unlock()
	writes = len(s.writes)
	if s.busySince.Load() != 0 {
		writes++ // at least the batch in the commit
	}
	return writes, outcomes
}

func (s *Store) isClosed() bool {
	s.closeMu.RLock()
	defer s.closeMu.RUnlock()
	return s.closed
}

// submit queues w for the next group commit and waits until it is durable.
// When ctx ends first, a write the committer has not taken yet is withdrawn
// and never applied, so the error that submit returns means "not written";
// a write already taken is waited for, since it may commit, unless it is
// abandonable.
func (s *Store) submit(ctx context.Context, w *write) error {
	w.done = make(chan error, 1)
	if err := ctx.Err(); err != nil {
		return err
	}
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return relay.ErrClosed
	}
	select {
	case s.writes <- w:
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return ctx.Err()
	}
	s.closeMu.RUnlock()
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
	}
	if w.state.CompareAndSwap(queued, withdrawn) || w.abandonable {
		return ctx.Err()
	}
	return <-w.done
}

// take claims w for a transaction, unless its caller withdrew it.
func take(w *write) bool { return w.state.CompareAndSwap(queued, taken) }

func (s *Store) commitLoop() {
	defer s.wg.Done()
	batch := make([]*write, 0, s.opts.MaxBatch)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		batch = batch[:0]
		wait := s.deferredWait()
		if wait >= 0 {
			timer.Reset(wait)
		}
		select {
		case w := <-s.writes:
			if take(w) {
				batch = append(batch, w)
			}
		case <-s.deferKick:
		case <-timer.C:
		case <-s.stop:
			// Close waited for every enqueue: finish what was queued.
			for {
				select {
				case w := <-s.writes:
					if take(w) {
						s.commit([]*write{w})
					}
				default:
					s.commit(s.takeDeferred(true))
					return
				}
			}
		}
		timer.Stop()
	gather:
		for len(batch) < s.opts.MaxBatch {
			select {
			case w := <-s.writes:
				if take(w) {
					batch = append(batch, w)
				}
			default:
				break gather
			}
		}
		// Ingests wait for their commit, outcomes do not: outcomes join
		// when the commit would otherwise be idle or they have piled up.
		batch = append(batch, s.takeDeferred(len(batch) == 0)...)
		if len(batch) > 0 {
			s.commit(batch)
		}
	}
}

// deferredWait is how long the oldest deferred outcome may still wait;
// -1 when there is none.
func (s *Store) deferredWait() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.deferred) == 0 {
		return -1
	}
	return max(0, deferDelay-time.Since(s.deferredSince))
}

// takeDeferred returns the deferred outcomes to write now, if any are due
// (or all of them with force).
func (s *Store) takeDeferred(force bool) []*write {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.deferred) == 0 {
		return nil
	}
	if !force && len(s.deferred) < deferBatch && time.Since(s.deferredSince) < deferDelay {
		return nil
	}
	ws := s.deferred
	s.deferred = nil
	return ws
}

// commit applies a batch in one transaction; when that fails it retries each
// write alone, so that one bad write fails only its own caller.
func (s *Store) commit(batch []*write) {
	if len(batch) == 0 {
		return
	}
	s.busySince.CompareAndSwap(0, time.Now().UnixNano())
	defer s.busySince.Store(0)
	if s.opts.BeforeCommit != nil {
		s.opts.BeforeCommit()
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, w := range batch {
			if err := w.apply(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		for _, w := range batch {
			s.commit([]*write{w})
		}
		return
	}
	switch {
	case err == nil:
		s.commitErr.Store(nil)
	case !ownFault(err):
		s.commitErr.Store(&err)
	}
	if err == nil {
		s.mu.Lock()
		for _, w := range batch {
			if w.after != nil {
				w.after()
			}
		}
		s.mu.Unlock()
	} else {
		s.log.Error("store commit failed", "err", err)
	}
	for _, w := range batch {
		if w.done != nil {
			w.done <- err
		} else if err != nil && w.failed != nil {
			w.failed(err)
		}
	}
}

// ownFault reports whether a write failed for its own input (a key or
// value bbolt refuses) rather than for the store: that fails its caller,
// not the relay's readiness.
func ownFault(err error) bool {
	return errors.Is(err, berrors.ErrKeyTooLarge) || errors.Is(err, berrors.ErrKeyRequired) ||
		errors.Is(err, berrors.ErrValueTooLarge) || errors.Is(err, berrors.ErrIncompatibleValue)
}

func attemptKey(deliveryID string, n int) []byte {
	k := make([]byte, 0, len(deliveryID)+5)
	k = append(k, deliveryID...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, uint32(n))
}

func dedupKey(source, key string) []byte {
	key = relay.MarkKey(key)
	k := make([]byte, 0, len(source)+1+len(key))
	k = append(k, source...)
	k = append(k, 0)
	return append(k, key...)
}

// Ingest implements relay.Store.
func (s *Store) Ingest(ctx context.Context, ev *relay.Event, ttl time.Duration) (relay.IngestResult, error) {
	rec, err := encodeEvent(ev)
	if err != nil {
		return relay.IngestResult{}, err
	}
	dels := make([][]byte, len(ev.Targets))
	for i, t := range ev.Targets {
		d := relay.Delivery{EventID: ev.ID, Target: t, State: relay.Pending,
			NextAttemptAt: ev.ReceivedAt, BudgetSince: ev.ReceivedAt, UpdatedAt: ev.ReceivedAt}
		if dels[i], err = encodeDelivery(&d); err != nil {
			return relay.IngestResult{}, fmt.Errorf("encode delivery: %w", err)
		}
	}
	dk := dedupKey(ev.Source, ev.DedupKey)
	res := relay.IngestResult{EventID: ev.ID}
	w := &write{
		apply: func(tx *bolt.Tx) error {
			res = relay.IngestResult{EventID: ev.ID}
			if first := tx.Bucket(bktDedup).Get(dk); first != nil {
				if t, ok := relay.EventTime(string(first)); ok && ev.ReceivedAt.Sub(t) < ttl {
					res = relay.IngestResult{EventID: string(first), Duplicate: true}
					return nil
				}
			}
			id := []byte(ev.ID)
			evs := tx.Bucket(bktEvents)
			evs.FillPercent = appendFill
			if err := evs.Put(id, rec); err != nil {
				return err
			}
			if err := tx.Bucket(bktDedup).Put(dk, id); err != nil {
				return err
			}
			for i, t := range ev.Targets {
				did := []byte(relay.DeliveryID(ev.ID, t))
				if err := tx.Bucket(bktDeliveries).Put(did, dels[i]); err != nil {
					return err
				}
			}
			return nil
		},
		after: func() {
			if res.Duplicate {
				return
			}
			fresh := ev
			if s.freshBytes+len(ev.Payload) > maxFreshBytes {
				fresh = nil
			} else if len(ev.Targets) > 0 {
				s.freshBytes += len(ev.Payload)
			}
			for _, t := range ev.Targets {
				s.queue(t).putFresh(relay.DeliveryID(ev.ID, t), ev.ReceivedAt, fresh)
			}
		},
	}
	if err := s.submit(ctx, w); err != nil {
		return relay.IngestResult{}, fmt.Errorf("ingest %s: %w", ev.ID, err)
	}
	return res, nil
}

// Claim implements relay.Store. Holds live in memory only.
func (s *Store) Claim(ctx context.Context, target string, now time.Time, max int) ([]relay.Claim, error) {
	if s.isClosed() {
		return nil, relay.ErrClosed
	}
	s.mu.Lock()
	q := s.queue(target)
	its := q.take(now, max)
	claims := make([]relay.Claim, 0, len(its))
	var stale []string
	for _, it := range its {
		if ev := it.fresh; ev != nil {
			// Never attempted since ingest: the record on disk is
			// the one Ingest wrote.
			it.fresh = nil
			claims = append(claims, relay.Claim{Event: ev, Delivery: relay.Delivery{
				EventID: ev.ID, Target: target, State: relay.Pending,
				NextAttemptAt: ev.ReceivedAt, BudgetSince: ev.ReceivedAt, UpdatedAt: ev.ReceivedAt,
			}})
			s.releaseFresh(ev)
			continue
		}
		stale = append(stale, it.id)
	}
	s.mu.Unlock()
	if len(stale) == 0 {
		return claims, nil
	}
	var gone []string
	err := s.db.View(func(tx *bolt.Tx) error {
		dels, evs := tx.Bucket(bktDeliveries), tx.Bucket(bktEvents)
		for _, id := range stale {
			var c relay.Claim
			raw := dels.Get([]byte(id))
			if raw == nil {
				gone = append(gone, id)
				continue
			}
			if err := decodeDelivery(raw, &c.Delivery); err != nil {
				return fmt.Errorf("decode delivery %s: %w", id, err)
			}
			if c.Delivery.State != relay.Pending {
				gone = append(gone, id)
				continue
			}
			ev, err := decodeEvent(evs.Get([]byte(c.Delivery.EventID)), true)
			if err != nil {
				return fmt.Errorf("decode event %s: %w", c.Delivery.EventID, err)
			}
			c.Event = ev
			claims = append(claims, c)
		}
		return nil
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range gone {
		q.remove(id)
	}
	if err != nil {
		// Put them all back: nothing was attempted.
		for _, c := range claims {
			q.put(c.Delivery.ID(), c.Delivery.NextAttemptAt)
		}
		for _, id := range stale {
			if _, held := q.byID[id]; held {
				q.put(id, now)
			}
		}
		return nil, fmt.Errorf("claim %s deliveries: %w", target, err)
	}
	return claims, nil
}

// releaseFresh gives back the memory of a fresh event once no queue item of
// its targets refers to it any more. Called with s.mu held.
func (s *Store) releaseFresh(ev *relay.Event) {
	for _, t := range ev.Targets {
		if q, ok := s.queues[t]; ok {
			if it, ok := q.byID[relay.DeliveryID(ev.ID, t)]; ok && it.fresh == ev {
				return
			}
		}
	}
	s.freshBytes -= len(ev.Payload)
}

// Backlog implements relay.Store.
func (s *Store) Backlog(ctx context.Context, target string) (int, error) {
	if s.isClosed() {
		return 0, relay.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue(target).size(), nil
}

// NextDue implements relay.Store.
func (s *Store) NextDue(ctx context.Context, target string) (time.Time, bool, error) {
	if s.isClosed() {
		return time.Time{}, false, relay.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.queue(target).next()
	return t, ok, nil
}

// Complete implements relay.Store.
func (s *Store) Complete(ctx context.Context, outcomes ...relay.Outcome) error {
	type enc struct {
		id, rec, attempt []byte
		attemptNo        int
		stored           bool // the record existed and was written
	}
	encs := make([]enc, len(outcomes))
	for i := range outcomes {
		o := &outcomes[i]
		e := enc{id: []byte(o.Delivery.ID())}
		var err error
		if e.rec, err = encodeDelivery(&o.Delivery); err != nil {
			return fmt.Errorf("encode delivery: %w", err)
		}
		if o.Attempt != nil {
			if e.attempt, err = json.Marshal(o.Attempt); err != nil {
				return fmt.Errorf("encode attempt: %w", err)
			}
			e.attemptNo = o.Attempt.Number
		}
		encs[i] = e
	}
	w := &write{
		apply: func(tx *bolt.Tx) error {
			dels, atts := tx.Bucket(bktDeliveries), tx.Bucket(bktAttempts)
			atts.FillPercent = appendFill
			for i := range encs {
				e := &encs[i]
				e.stored = dels.Get(e.id) != nil
				if !e.stored {
					continue // pruned or never stored: nothing to update
				}
				if err := dels.Put(e.id, e.rec); err != nil {
					return err
				}
				if e.attempt != nil {
					if err := atts.Put(attemptKey(string(e.id), e.attemptNo), e.attempt); err != nil {
						return err
					}
				}
			}
			return nil
		},
		after: func() {
			for i, o := range outcomes {
				q := s.queue(o.Delivery.Target)
				switch {
				case o.Delivery.State == relay.Pending:
					q.put(o.Delivery.ID(), o.Delivery.NextAttemptAt)
				case encs[i].stored:
					q.remove(o.Delivery.ID())
					s.finishedOf(o.Delivery.Target).add(o.Delivery.ID(), o.Delivery.State)
				default:
					q.remove(o.Delivery.ID())
				}
			}
		},
	}
	// The outcome is lost if the write fails, but the delivery is not: it
	// goes back in line and is attempted again.
	retry := func(error) { s.requeue(s.opts.Now().Add(time.Second), deliveriesOf(outcomes)) }
	// Held across the check and the append, so that Close, which flushes
	// the deferred outcomes last, cannot miss this one.
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return relay.ErrClosed
	}
	// Final outcomes (delivered, dead) ride along with a later commit: the
	// delivery just stays held until then. An outcome that schedules another
	// attempt is written now, so that the delivery is back in line, due at
	// its time, when Complete returns.
	final := true
	for _, o := range outcomes {
		final = final && o.Delivery.State != relay.Pending
	}
	s.mu.Lock()
	if final && len(s.deferred) < maxDeferred {
		w.failed = retry
		if len(s.deferred) == 0 {
			s.deferredSince = time.Now()
		}
		s.deferred = append(s.deferred, w)
		n := len(s.deferred)
		s.mu.Unlock()
		s.closeMu.RUnlock()
		if n == 1 || n == deferBatch {
			select {
			case s.deferKick <- struct{}{}:
			default:
			}
		}
		return nil
	}
	s.mu.Unlock()
	s.closeMu.RUnlock()
	// Nobody is answered with an outcome: the dispatcher may leave it at
	// shutdown, and the delivery is attempted again if it is lost.
	w.abandonable = true
	if err := s.submit(ctx, w); err != nil {
		retry(err)
		return fmt.Errorf("complete deliveries: %w", err)
	}
	return nil
}

func deliveriesOf(os []relay.Outcome) []relay.Delivery {
	ds := make([]relay.Delivery, len(os))
	for i, o := range os {
		ds[i] = o.Delivery
	}
	return ds
}

// Release implements relay.Store. Holds are in memory, so nothing is
// written: the stored due time stays what it was, which is at or before at.
func (s *Store) Release(ctx context.Context, at time.Time, ds ...relay.Delivery) error {
	if s.isClosed() {
		return relay.ErrClosed
	}
	s.requeue(at, ds)
	return nil
}

// requeue puts deliveries back in line at at. It does not take closeMu, so
// that the committer can call it while Close waits.
func (s *Store) requeue(at time.Time, ds []relay.Delivery) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range ds {
		s.queue(d.Target).put(d.ID(), at)
	}
}
