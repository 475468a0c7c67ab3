package pebblestore

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hooxrelay/hooxrelay/relay"
)

// queue is what the store keeps in memory of one target's queue: where
// its scans start, and the held deliveries. Both are small whatever the
// backlog: holds are bounded by the dispatcher's concurrency.
type queue struct {
	prefix []byte // of the target's queue keys
	mu     sync.Mutex
	// head is a queue key at or before every pending delivery's, once
	// lowest is applied: keys before it were all deleted. Scans start
	// there instead of at the prefix, so that the tombstones of finished
	// deliveries are not walked again.
	head []byte
	held map[string][]byte // delivery id → its queue key

	// lowest is the lowest queue key written since the last scan: writers
	// note it after their commit under lmu alone, so that an ingest never
	// waits for a scan in progress, and the next scan moves head back to
	// it before it starts.
	lmu    sync.Mutex
	lowest []byte
}

func (s *Store) queue(target string) *queue {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	q, ok := s.queues[target]
	if !ok {
		p := queuePrefix(target)
		q = &queue{prefix: p, head: p, held: make(map[string][]byte)}
		s.queues[target] = q
	}
	return q
}

// lower notes k, a queue key just committed: the next scan starts at it
// if it is before head.
func (q *queue) lower(k []byte) {
	q.lmu.Lock()
	if q.lowest == nil || bytes.Compare(k, q.lowest) < 0 {
		q.lowest = k
	}
	q.lmu.Unlock()
}

// applyLowest moves head back to the lowest key written since the last
// scan. Called with q.mu held.
func (q *queue) applyLowest() {
	q.lmu.Lock()
	if q.lowest != nil && bytes.Compare(q.lowest, q.head) < 0 {
		q.head = q.lowest
	}
	q.lowest = nil
	q.lmu.Unlock()
}

// isHeld reports whether a claim (or a swap being written) holds id.
func (q *queue) isHeld(id string) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	_, ok := q.held[id]
	return ok
}

// reserve holds id unless it is held already.
func (q *queue) reserve(id string, qk []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.held[id]; ok {
		return false
	}
	q.held[id] = qk
	return true
}

func (q *queue) unhold(ids ...string) {
	q.mu.Lock()
	for _, id := range ids {
		delete(q.held, id)
	}
	q.mu.Unlock()
}

// scan walks the target's queue keys from head up to upper (nil: the end
// of the queue), skipping held ones, and calls fn with each delivery id,
// queue key and value until it returns false; the key and value are the
// iterator's, valid during the call only. It moves head to the first key
// it meets. Called with q.mu held.
func (s *Store) scan(q *queue, upper []byte, fn func(id string, k, v []byte) bool) error {
	if upper == nil {
		upper = prefixEnd(q.prefix)
	}
	q.applyLowest()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: q.head, UpperBound: upper})
	if err != nil {
		return err
	}
	first := true
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if first {
			q.head, first = bytes.Clone(k), false
		}
		if len(k) < len(q.prefix)+8 {
			it.Close()
			return fmt.Errorf("corrupt queue key %q", k)
		}
		id := k[len(q.prefix)+8:]
		if _, held := q.held[string(id)]; held { // no copy of the id
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return err
		}
		if !fn(string(id), k, v) {
			break
		}
	}
	if first && it.Error() == nil {
		q.head = bytes.Clone(upper) // every key before upper is deleted
	}
	return it.Close()
}

// Claim implements relay.Queue: the earliest due keys of the target's
// queue are held, then their records read.
func (s *Store) Claim(ctx context.Context, target string, now time.Time, max int) ([]relay.Claim, error) {
	if !s.enter() {
		return nil, relay.ErrClosed
	}
	defer s.leave()
	if max <= 0 {
		return nil, nil
	}
	q := s.queue(target)
	upper := appendDue(bytes.Clone(q.prefix), now.Add(time.Nanosecond))
	var ids []string
	var recs [][]byte
	q.mu.Lock()
	err := s.scan(q, upper, func(id string, k, v []byte) bool {
		q.held[id] = bytes.Clone(k)
		ids = append(ids, id)
		recs = append(recs, bytes.Clone(v))
		return len(ids) < max
	})
	q.mu.Unlock()
	if err != nil {
		q.unhold(ids...)
		return nil, fmt.Errorf("claim %s deliveries: %w", target, err)
	}
	claims := make([]relay.Claim, 0, len(ids))
	for i, id := range ids {
		c, ok, err := s.loadClaim(id, recs[i])
		if err != nil {
			q.unhold(ids[i:]...)
			for _, c := range claims {
				q.unhold(c.Delivery.ID())
			}
			return nil, fmt.Errorf("claim %s deliveries: %w", target, err)
		}
		if !ok {
			q.unhold(id)
			continue
		}
		claims = append(claims, c)
	}
	return claims, nil
}

// loadClaim reads a pending delivery and its event; ok is false when the
// delivery is gone or no longer pending. raw is its queue key's value:
// the delivery's record, written with it (move), or empty in a store
// written before queue keys held it, when the record is read.
func (s *Store) loadClaim(id string, raw []byte) (relay.Claim, bool, error) {
	var c relay.Claim
	if len(raw) == 0 {
		var err error
		if raw, err = s.get(deliveryKey(id)); err != nil || raw == nil {
			return c, false, err
		}
	}
	if err := decodeDelivery(id, raw, &c.Delivery); err != nil {
		return c, false, fmt.Errorf("delivery %s: %w", id, err)
	}
	if c.Delivery.State != relay.Pending {
		return c, false, nil
	}
	if c.Event = s.events.take(c.Delivery.EventID); c.Event != nil {
		return c, true, nil
	}
	v, closer, err := s.db.Get(eventKey(c.Delivery.EventID))
	if err != nil {
		return c, false, fmt.Errorf("event %s of pending delivery %s: %w", c.Delivery.EventID, id, err)
	}
	defer closer.Close()
	if c.Event, err = decodeEvent(c.Delivery.EventID, v, true); err != nil {
		return c, false, fmt.Errorf("event %s: %w", c.Delivery.EventID, err)
	}
	if c.Delivery.Attempts == 0 {
		// A first attempt: the event's other targets are claiming it too.
		s.events.put(c.Event, len(c.Event.Targets)-1)
	}
	return c, true, nil
}

// NextDue implements relay.Queue.
func (s *Store) NextDue(ctx context.Context, target string) (time.Time, bool, error) {
	if !s.enter() {
		return time.Time{}, false, relay.ErrClosed
	}
	defer s.leave()
	q := s.queue(target)
	var due time.Time
	found := false
	q.mu.Lock()
	err := s.scan(q, nil, func(_ string, k, _ []byte) bool {
		due, found = readDue(k[len(q.prefix):]), true
		return false
	})
	q.mu.Unlock()
	return due, found, err
}

// Backlog implements relay.Queue from the target's pending counter.
func (s *Store) Backlog(ctx context.Context, target string) (int, error) {
	if !s.enter() {
		return 0, relay.ErrClosed
	}
	defer s.leave()
	return int(s.countsOf(target).pending.Load()), nil
}

// move writes into b the change of the delivery id from its stored record
// cur (nil: none) to d: the record, its queue key (oldQ, when cur is
// pending), the index of its state and the counters.
func move(b *batch, cur *relay.Delivery, oldQ []byte, d *relay.Delivery) ([]byte, error) {
	rec, err := appendDelivery(nil, d)
	if err != nil {
		return nil, err
	}
	id := d.ID()
	if err := b.Set(deliveryKey(id), rec, nil); err != nil {
		return nil, err
	}
	if oldQ != nil {
		b.Delete(oldQ, nil)
	}
	var newQ []byte
	if d.State == relay.Pending {
		// The record again: a claim then reads it with the key.
		newQ = queueKey(d.Target, d.NextAttemptAt, id)
		b.Set(newQ, rec, nil)
	}
	code, _ := stateCode(d.State)
	if cur == nil || cur.State != d.State {
		if cur != nil {
			was, _ := stateCode(cur.State)
			b.Delete(stateIndexKey(was, cur), nil)
			b.count(cur.Target, was, -1)
		}
		b.Set(stateIndexKey(code, d), nil, nil)
		b.count(d.Target, code, 1)
	}
	return newQ, nil
}

// loadDelivery reads the delivery id; ok is false when there is none.
func (s *Store) loadDelivery(id string) (d relay.Delivery, ok bool, err error) {
	raw, err := s.get(deliveryKey(id))
	if err != nil || raw == nil {
		return d, false, err
	}
	if err := decodeDelivery(id, raw, &d); err != nil {
		return d, false, fmt.Errorf("delivery %s: %w", id, err)
	}
	return d, true, nil
}

// complete writes outcomes in one batch. Only the completion writer calls
// it, and Close waits for the writer before it closes the database.
func (s *Store) complete(outcomes []relay.Outcome) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	b := s.newBatch()
	type done struct {
		q    *queue
		id   string
		newQ []byte
	}
	dones := make([]done, 0, len(outcomes))
	for i := range outcomes {
		d := &outcomes[i].Delivery
		id := d.ID()
		q := s.queue(d.Target)
		cur, oldQ, ok, err := s.current(q, d)
		if err != nil {
			b.Close()
			return s.completeFailed(outcomes, err)
		}
		dn := done{q: q, id: id}
		if !ok {
			dones = append(dones, dn) // pruned or never stored
			continue
		}
		newQ, err := move(b, &cur, oldQ, d)
		if err != nil {
			b.Close()
			return s.completeFailed(outcomes, err)
		}
		if a := outcomes[i].Attempt; a != nil {
			b.Set(attemptKey(id, a.Number), appendAttempt(nil, a), nil)
		}
		dn.newQ = newQ
		dones = append(dones, dn)
	}
	if err := s.commit(b, false); err != nil {
		return s.completeFailed(outcomes, err)
	}
	for _, dn := range dones {
		if dn.newQ != nil {
			dn.q.lower(dn.newQ)
		}
		dn.q.unhold(dn.id)
	}
	return nil
}

// current returns the stored record of the delivery d names and its
// queue key (nil when it is not pending); ok is false when there is none.
// A claimed delivery is not read again: nothing else writes a delivery a
// claim holds (swaps skip it, pruning keeps pending ones), so it is still
// pending under the key its claim holds.
func (s *Store) current(q *queue, d *relay.Delivery) (cur relay.Delivery, oldQ []byte, ok bool, err error) {
	q.mu.Lock()
	k := q.held[d.ID()]
	q.mu.Unlock()
	if k != nil {
		return relay.Delivery{EventID: d.EventID, Target: d.Target, State: relay.Pending}, k, true, nil
	}
	if cur, ok, err = s.loadDelivery(d.ID()); err != nil || !ok {
		return cur, nil, ok, err
	}
	return cur, s.queueKeyOf(q, &cur), true, nil
}

// queueKeyOf returns the queue key of the stored delivery d: its hold's,
// or the one of its due time; nil when it is not pending.
func (s *Store) queueKeyOf(q *queue, d *relay.Delivery) []byte {
	if d.State != relay.Pending {
		return nil
	}
	q.mu.Lock()
	k, ok := q.held[d.ID()]
	q.mu.Unlock()
	if ok && k != nil {
		return k
	}
	return queueKey(d.Target, d.NextAttemptAt, d.ID())
}

// retryAfterFailure is how long a delivery whose outcome could not be
// written stays held: it is pending in the store, due as it was, and the
// dispatcher would otherwise attempt it again at once while the disk fails.
const retryAfterFailure = time.Second

func (s *Store) completeFailed(outcomes []relay.Outcome, err error) error {
	time.AfterFunc(retryAfterFailure, func() {
		for _, o := range outcomes {
			s.queue(o.Delivery.Target).unhold(o.Delivery.ID())
		}
	})
	return fmt.Errorf("complete deliveries: %w", err)
}

// Release implements relay.Queue: each delivery's queue key and recorded
// due time move to at.
func (s *Store) Release(ctx context.Context, at time.Time, ds ...relay.Delivery) error {
	if !s.enter() {
		return relay.ErrClosed
	}
	defer s.leave()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	b := s.newBatch()
	var lowers [][]byte
	var err error
	for _, rd := range ds {
		id := rd.ID()
		q := s.queue(rd.Target)
		cur, ok, lerr := s.loadDelivery(id)
		if lerr != nil {
			err = lerr
			break
		}
		if !ok || cur.State != relay.Pending || cur.NextAttemptAt.Equal(at) {
			continue
		}
		d := cur
		d.NextAttemptAt = at
		newQ, merr := move(b, &cur, s.queueKeyOf(q, &cur), &d)
		if merr != nil {
			err = merr
			break
		}
		lowers = append(lowers, newQ)
	}
	if err == nil {
		err = s.commit(b, false)
	} else {
		b.Close()
	}
	for _, rd := range ds {
		q := s.queue(rd.Target)
		for _, k := range lowers {
			if bytes.HasPrefix(k, q.prefix) {
				q.lower(k)
			}
		}
		q.unhold(rd.ID())
	}
	if err != nil {
		return fmt.Errorf("release deliveries: %w", err)
	}
	return nil
}
