package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/hooxrelay/hooxrelay/relay"
	bolt "go.etcd.io/bbolt"
)

// finished is the in-memory index of one target's delivered and dead
// deliveries, rebuilt at open from the record heads. Dead ones are kept by
// id (dead letters are what operators list and replay); delivered ones are
// only counted. Guarded by Store.mu.
type finished struct {
	delivered int
	dead      map[string]struct{}
}

func (s *Store) finishedOf(target string) *finished {
	f, ok := s.finished[target]
	if !ok {
		f = &finished{dead: make(map[string]struct{})}
		s.finished[target] = f
	}
	return f
}

func (f *finished) add(id string, state relay.State) {
	if state == relay.Dead {
		f.dead[id] = struct{}{}
	} else {
		f.delivered++
	}
}

// remove forgets a finished delivery that was deleted or requeued.
func (f *finished) remove(id string) {
	if _, ok := f.dead[id]; ok {
		delete(f.dead, id)
	} else if f.delivered > 0 {
		f.delivered--
	}
}

func (s *Store) readTx(fn func(tx *bolt.Tx) error) error {
	if s.isClosed() {
		return relay.ErrClosed
	}
	return s.db.View(fn)
}

// Events implements relay.Admin by walking events newest first from
// f.Before: event keys sort by receive time, and only the metadata of each
// is decoded. A filter matching few events walks far; the embedded store
// keeps no secondary index, so that ingest writes stay one record per event.
func (s *Store) Events(ctx context.Context, f relay.EventFilter) ([]relay.EventSummary, error) {
	limit := relay.PageSize(f.Limit)
	var out []relay.EventSummary
	err := s.readTx(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktEvents).Cursor()
		k, v := lastBefore(c, f.Before)
		for n := 0; k != nil && len(out) < limit; k, v = c.Prev() {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			ev, err := decodeEvent(v, false)
			if err != nil {
				return fmt.Errorf("event %s: %w", k, err)
			}
			if (f.Task != "" && ev.Task != f.Task) || (f.Status != "" && ev.Status != f.Status) {
				continue
			}
			ds, err := deliveriesOfEvent(tx, ev)
			if err != nil {
				return err
			}
			out = append(out, relay.EventSummary{Event: ev, Deliveries: ds})
		}
		return nil
	})
	return out, err
}

// firstAfter moves c to the first key after after, or to the first key
// when after is "".
func firstAfter(c *bolt.Cursor, after string) (k, v []byte) {
	if after == "" {
		return c.First()
	}
	k, v = c.Seek([]byte(after))
	if bytes.Equal(k, []byte(after)) {
		k, v = c.Next()
	}
	return k, v
}

// lastBefore moves c to the last key before before, or to the last key
// when before is "".
func lastBefore(c *bolt.Cursor, before string) (k, v []byte) {
	if before == "" {
		return c.Last()
	}
	k, v = c.Seek([]byte(before))
	if k == nil {
		k, v = c.Last()
	}
	for k != nil && bytes.Compare(k, []byte(before)) >= 0 {
		k, v = c.Prev()
	}
	return k, v
}

func deliveriesOfEvent(tx *bolt.Tx, ev *relay.Event) ([]relay.Delivery, error) {
	dels := tx.Bucket(bktDeliveries)
	ds := make([]relay.Delivery, 0, len(ev.Targets))
	for _, t := range ev.Targets {
		id := relay.DeliveryID(ev.ID, t)
		raw := dels.Get([]byte(id))
		if raw == nil {
			continue
		}
		var d relay.Delivery
		if err := decodeDelivery(raw, &d); err != nil {
			return nil, fmt.Errorf("delivery %s: %w", id, err)
		}
		ds = append(ds, d)
	}
	return ds, nil
}

// Event implements relay.Admin.
func (s *Store) Event(ctx context.Context, id string) (*relay.EventDetail, error) {
	var out *relay.EventDetail
	err := s.readTx(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bktEvents).Get([]byte(id))
		if raw == nil {
			return relay.EventNotFound(id)
		}
		ev, err := decodeEvent(raw, true)
		if err != nil {
			return fmt.Errorf("event %s: %w", id, err)
		}
		ds, err := deliveriesOfEvent(tx, ev)
		if err != nil {
			return err
		}
		out = &relay.EventDetail{Event: ev}
		atts := tx.Bucket(bktAttempts).Cursor()
		for _, d := range ds {
			dd := relay.DeliveryDetail{Delivery: d}
			prefix := append([]byte(d.ID()), 0)
			for k, v := atts.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = atts.Next() {
				a, err := decodeAttempt(v)
				if err != nil {
					return fmt.Errorf("attempt %q: %w", k, err)
				}
				dd.History = append(dd.History, a)
			}
			out.Deliveries = append(out.Deliveries, dd)
		}
		return nil
	})
	return out, err
}

// Deliveries implements relay.Admin. Pending and dead deliveries are found
// in the in-memory indexes; delivered ones by walking the records in the
// order asked for, reading only their heads until one matches.
func (s *Store) Deliveries(ctx context.Context, f relay.DeliveryFilter) ([]relay.Delivery, error) {
	limit := relay.PageSize(f.Limit)
	if f.State == relay.Pending || f.State == relay.Dead {
		ids := s.indexed(f, limit)
		var out []relay.Delivery
		err := s.readTx(func(tx *bolt.Tx) error {
			dels := tx.Bucket(bktDeliveries)
			for _, id := range ids {
				raw := dels.Get([]byte(id))
				if raw == nil {
					continue // pruned meanwhile
				}
				var d relay.Delivery
				if err := decodeDelivery(raw, &d); err != nil {
					return fmt.Errorf("delivery %s: %w", id, err)
				}
				out = append(out, d)
			}
			return nil
		})
		return out, err
	}
	var out []relay.Delivery
	err := s.readTx(func(tx *bolt.Tx) error {
		c := tx.Bucket(bktDeliveries).Cursor()
		next := c.Prev
		k, v := lastBefore(c, f.Before)
		if f.Oldest {
			next = c.Next
			k, v = firstAfter(c, f.Before)
		}
		for n := 0; k != nil && len(out) < limit; k, v = next() {
			if n++; n%4096 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			if f.Target != "" {
				if _, t, _ := relay.SplitDeliveryID(string(k)); t != f.Target {
					continue
				}
			}
			state, _, err := deliveryHead(v)
			if err != nil {
				return fmt.Errorf("delivery %s: %w", k, err)
			}
			if f.State != "" && state != f.State {
				continue
			}
			var d relay.Delivery
			if err := decodeDelivery(v, &d); err != nil {
				return fmt.Errorf("delivery %s: %w", k, err)
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// indexed returns the ids of up to limit pending or dead deliveries that f
// selects, in its order, from the in-memory indexes.
func (s *Store) indexed(f relay.DeliveryFilter, limit int) []string {
	var ids []string
	keep := func(id string) {
		if f.Before == "" || (!f.Oldest && id < f.Before) || (f.Oldest && id > f.Before) {
			ids = append(ids, id)
		}
	}
	s.mu.Lock()
	for target := range s.targets() {
		if f.Target != "" && target != f.Target {
			continue
		}
		if f.State == relay.Pending {
			if q, ok := s.queues[target]; ok {
				for id := range q.byID {
					keep(id)
				}
			}
		} else if fin, ok := s.finished[target]; ok {
			for id := range fin.dead {
				keep(id)
			}
		}
	}
	s.mu.Unlock()
	slices.Sort(ids)
	if !f.Oldest {
		slices.Reverse(ids)
	}
	return ids[:min(len(ids), limit)]
}

// targets yields every target the store has deliveries of. Called with
// s.mu held.
func (s *Store) targets() func(yield func(string) bool) {
	return func(yield func(string) bool) {
		for t := range s.queues {
			if !yield(t) {
				return
			}
		}
		for t := range s.finished {
			if _, ok := s.queues[t]; !ok && !yield(t) {
				return
			}
		}
	}
}

// Counts implements relay.Admin from the in-memory indexes.
func (s *Store) Counts(ctx context.Context) (map[string]relay.StateCounts, error) {
	if s.isClosed() {
		return nil, relay.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]relay.StateCounts)
	for target := range s.targets() {
		var c relay.StateCounts
		if q, ok := s.queues[target]; ok {
			c.Pending = q.size()
		}
		if f, ok := s.finished[target]; ok {
			c.Delivered, c.Dead = f.delivered, len(f.dead)
		}
		out[target] = c
	}
	return out, nil
}

// pausedKey is the meta key of a target's pause mark.
func pausedKey(target string) []byte { return append([]byte("paused\x00"), target...) }

// SetPaused implements relay.Admin.
func (s *Store) SetPaused(ctx context.Context, target string, paused bool) error {
	err := s.submit(ctx, &write{apply: func(tx *bolt.Tx) error {
		if paused {
			return tx.Bucket(bktMeta).Put(pausedKey(target), []byte{1})
		}
		return tx.Bucket(bktMeta).Delete(pausedKey(target))
	}})
	if err != nil {
		return fmt.Errorf("pause %s: %w", target, err)
	}
	return nil
}

// Paused implements relay.Admin.
func (s *Store) Paused(ctx context.Context) (map[string]bool, error) {
	out := make(map[string]bool)
	err := s.readTx(func(tx *bolt.Tx) error {
		prefix := pausedKey("")
		c := tx.Bucket(bktMeta).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			out[string(k[len(prefix):])] = true
		}
		return nil
	})
	return out, err
}
