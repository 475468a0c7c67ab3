package boltstore

import (
	"context"
	"fmt"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	bolt "go.etcd.io/bbolt"
)

// Claim implements relay.Queue. Holds live in memory only.
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
			claims = append(claims, relay.Claim{Event: ev, Delivery: relay.NewDelivery(ev, target)})
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

// Backlog implements relay.Queue.
func (s *Store) Backlog(ctx context.Context, target string) (int, error) {
	if s.isClosed() {
		return 0, relay.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queue(target).size(), nil
}

// NextDue implements relay.Queue.
func (s *Store) NextDue(ctx context.Context, target string) (time.Time, bool, error) {
	if s.isClosed() {
		return time.Time{}, false, relay.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.queue(target).next()
	return t, ok, nil
}

// Complete implements relay.Queue.
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
			if e.attempt, err = encodeAttempt(o.Attempt); err != nil {
				return err
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

// Release implements relay.Queue. Holds are in memory, so nothing is
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
