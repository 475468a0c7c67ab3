package pebblestore

import (
	"context"
	"fmt"
	"slices"

	"github.com/hooxrelay/hooxrelay/relay"
)

// LoadDelivery implements relay.Admin. Holds live in memory: held is read
// after the record, and SwapDeliveries checks both again.
func (s *Store) LoadDelivery(ctx context.Context, id string) (relay.Delivery, bool, error) {
	var d relay.Delivery
	held := false
	err := s.view(func() error {
		var ok bool
		var err error
		if d, ok, err = s.loadDelivery(id); err != nil {
			return err
		}
		if !ok {
			return relay.DeliveryNotFound(id)
		}
		held = d.State == relay.Pending && s.queue(d.Target).isHeld(id)
		return nil
	})
	if err != nil {
		return relay.Delivery{}, false, err
	}
	return d, held, nil
}

// SwapDeliveries implements relay.Admin in one synced batch. A pending
// delivery it rewrites is held meanwhile, so that no claim reads the old
// record.
func (s *Store) SwapDeliveries(ctx context.Context, swaps ...relay.Swap) (int, error) {
	for _, sw := range swaps {
		if sw.Old != nil && sw.Old.ID() != sw.New.ID() {
			return 0, fmt.Errorf("swap of delivery %s for %s: not the same delivery", sw.Old.ID(), sw.New.ID())
		}
		if _, ok := stateCode(sw.New.State); !ok {
			return 0, fmt.Errorf("swap of delivery %s: unknown state %q", sw.New.ID(), sw.New.State)
		}
	}
	n := 0
	err := s.view(func() error {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
		b := s.newBatch()
		type change struct {
			q        *queue
			id       string
			newQ     []byte
			reserved bool
		}
		var changes []change
		defer func() {
			for _, c := range changes {
				if c.reserved {
					c.q.unhold(c.id)
				}
			}
		}()
		events := map[string]*relay.Event{} // events given a target by this batch
		for i := range swaps {
			sw := &swaps[i]
			id := sw.New.ID()
			q := s.queue(sw.New.Target)
			cur, ok, err := s.loadDelivery(id)
			if err != nil {
				b.Close()
				return err
			}
			c := change{q: q, id: id}
			var curp *relay.Delivery
			var oldQ []byte
			if sw.Old == nil {
				if ok {
					continue
				}
				ev := events[sw.New.EventID]
				if ev == nil {
					if ev, err = s.loadEvent(sw.New.EventID, true); err != nil {
						b.Close()
						return err
					}
					if ev == nil {
						continue
					}
					events[ev.ID] = ev
				}
				if !slices.Contains(ev.Targets, sw.New.Target) {
					ev.Targets = append(ev.Targets, sw.New.Target)
				}
			} else {
				if !ok || !cur.Equal(*sw.Old) {
					continue
				}
				curp = &cur
				if cur.State == relay.Pending {
					oldQ = queueKey(cur.Target, cur.NextAttemptAt, id)
					if !q.reserve(id, oldQ) {
						continue // held by a claim
					}
					c.reserved = true
				}
			}
			if c.newQ, err = move(b, curp, oldQ, &sw.New); err != nil {
				b.Close()
				return err
			}
			changes = append(changes, c)
		}
		for _, ev := range events {
			b.Set(eventKey(ev.ID), appendEvent(nil, ev), nil)
		}
		if err := s.commit(b, true); err != nil {
			return err
		}
		for id := range events {
			s.events.forget(id)
		}
		for _, c := range changes {
			if c.newQ != nil {
				c.q.lower(c.newQ)
			}
		}
		n = len(changes)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("swap deliveries: %w", err)
	}
	return n, nil
}
