package boltstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	bolt "go.etcd.io/bbolt"
)

// LoadDelivery implements relay.Admin. Holds live in memory: held is read
// after the record, and SwapDeliveries checks both again.
func (s *Store) LoadDelivery(ctx context.Context, id string) (relay.Delivery, bool, error) {
	var d relay.Delivery
	err := s.readTx(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bktDeliveries).Get([]byte(id))
		if raw == nil {
			return relay.DeliveryNotFound(id)
		}
		if err := decodeDelivery(raw, &d); err != nil {
			return fmt.Errorf("delivery %s: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return relay.Delivery{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return d, d.State == relay.Pending && s.held(d.Target, id), nil
}

// held reports whether a claim holds delivery id of target. Called with
// s.mu held.
func (s *Store) held(target, id string) bool {
	q, ok := s.queues[target]
	if !ok {
		return false
	}
	it, ok := q.byID[id]
	return ok && it.index < 0
}

// SwapDeliveries implements relay.Admin in one commit.
func (s *Store) SwapDeliveries(ctx context.Context, swaps ...relay.Swap) (int, error) {
	recs := make([][]byte, len(swaps))
	for i, sw := range swaps {
		if sw.Old != nil && sw.Old.ID() != sw.New.ID() {
			return 0, fmt.Errorf("swap of delivery %s for %s: not the same delivery", sw.Old.ID(), sw.New.ID())
		}
		var err error
		if recs[i], err = encodeDelivery(&sw.New); err != nil {
			return 0, err
		}
	}
	var changes []*swapped
	w := &write{
		apply: func(tx *bolt.Tx) error {
			s.mu.Lock()
			defer s.mu.Unlock()
			// A batch that failed is applied again alone: start over.
			s.unreserve(changes)
			changes = changes[:0]
			for i := range swaps {
				c, err := s.swap(tx, &swaps[i], recs[i])
				if err != nil {
					return err
				}
				if c != nil {
					changes = append(changes, c)
				}
			}
			return nil
		},
		after: func() {
			for _, c := range changes {
				id, target := c.d.ID(), c.d.Target
				if c.was == relay.Delivered || c.was == relay.Dead {
					s.finishedOf(target).remove(id)
				}
				if c.d.State == relay.Pending {
					s.queue(target).put(id, c.d.NextAttemptAt)
				} else {
					s.queue(target).remove(id)
					s.finishedOf(target).add(id, c.d.State)
				}
			}
		},
	}
	if err := s.submit(ctx, w); err != nil {
		s.mu.Lock()
		s.unreserve(changes)
		s.mu.Unlock()
		return 0, fmt.Errorf("swap deliveries: %w", err)
	}
	return len(changes), nil
}

// swapped is one delivery that SwapDeliveries stores.
type swapped struct {
	d        relay.Delivery // the new record
	was      relay.State    // the old record's state; "" for a new delivery
	oldDue   time.Time
	reserved bool // held by the swap itself until its write is durable
}

// swap writes one swap's record in tx when the stored one is as sw.Old
// says and nobody holds it; it returns nil when it does not. A pending
// delivery it writes leaves the line until the commit is durable, so that
// no claim reads the old record meanwhile. Called with s.mu held.
func (s *Store) swap(tx *bolt.Tx, sw *relay.Swap, rec []byte) (*swapped, error) {
	id := sw.New.ID()
	raw := tx.Bucket(bktDeliveries).Get([]byte(id))
	c := &swapped{d: sw.New}
	if sw.Old == nil {
		if raw != nil {
			return nil, nil
		}
		if ok, err := addTarget(tx, sw.New.EventID, sw.New.Target); err != nil || !ok {
			return nil, err
		}
	} else {
		if raw == nil {
			return nil, nil
		}
		var cur relay.Delivery
		if err := decodeDelivery(raw, &cur); err != nil {
			return nil, fmt.Errorf("delivery %s: %w", id, err)
		}
		if !cur.Equal(*sw.Old) {
			return nil, nil
		}
		c.was, c.oldDue = cur.State, cur.NextAttemptAt
		if cur.State == relay.Pending {
			q := s.queue(cur.Target)
			if it, ok := q.byID[id]; ok {
				if it.index < 0 {
					return nil, nil // held by a claim
				}
				q.hold(it)
				c.reserved = true
				if ev := it.fresh; ev != nil {
					it.fresh = nil // stale from now on
					s.releaseFresh(ev)
				}
			}
		}
	}
	if err := tx.Bucket(bktDeliveries).Put([]byte(id), rec); err != nil {
		return nil, err
	}
	return c, nil
}

// addTarget adds target to the targets of the stored event id, and reports
// false when there is no such event.
func addTarget(tx *bolt.Tx, id, target string) (bool, error) {
	evs := tx.Bucket(bktEvents)
	raw := evs.Get([]byte(id))
	if raw == nil {
		return false, nil
	}
	ev, err := decodeEvent(raw, true)
	if err != nil {
		return false, fmt.Errorf("event %s: %w", id, err)
	}
	if slices.Contains(ev.Targets, target) {
		return true, nil
	}
	ev.Targets = append(ev.Targets, target)
	rec, err := encodeEvent(ev)
	if err != nil {
		return false, err
	}
	return true, evs.Put([]byte(id), rec)
}

// unreserve puts back in line, at their old due time, the deliveries that a
// swap held and then did not write. Called with s.mu held.
func (s *Store) unreserve(cs []*swapped) {
	for _, c := range cs {
		if c.reserved {
			s.queue(c.d.Target).put(c.d.ID(), c.oldDue)
		}
	}
}
