package boltstore

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
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
		if err := s.fault.Load(); err != nil {
			return *err
		}
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
