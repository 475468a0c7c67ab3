package pebblestore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hooxrelay/hooxrelay/relay"
)

// view runs fn as a call in progress, or returns ErrClosed.
func (s *Store) view(fn func() error) error {
	if !s.enter() {
		return relay.ErrClosed
	}
	defer s.leave()
	return fn()
}

// bounds returns the iterator bounds of the keys with prefix p that come
// before (or after, with after set) the key p+at; at "" means all of them.
func bounds(p []byte, at string, after bool) *pebble.IterOptions {
	o := &pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)}
	if at != "" {
		k := append(bytes.Clone(p), at...)
		if after {
			o.LowerBound = append(k, 0) // the first key after p+at
		} else {
			o.UpperBound = k
		}
	}
	return o
}

// Events implements relay.Admin: it walks the most selective index of f
// (searchPrefixes) over the ids of f's time range and page, and checks the
// other fields on the events it yields.
func (s *Store) Events(ctx context.Context, f relay.EventFilter) ([]relay.EventSummary, error) {
	limit := relay.PageSize(f.Limit)
	var out []relay.EventSummary
	err := s.view(func() error {
		prefixes, err := s.searchPrefixes(&f)
		if err != nil {
			return err
		}
		lo, hi := f.IDRange()
		m, err := s.newMerge(prefixes, func(p []byte) *pebble.IterOptions {
			o := &pebble.IterOptions{LowerBound: append(bytes.Clone(p), lo...), UpperBound: prefixEnd(p)}
			if hi != "" {
				o.UpperBound = append(bytes.Clone(p), hi...)
			}
			if bytes.Compare(o.LowerBound, o.UpperBound) >= 0 {
				return nil
			}
			return o
		}, f.Oldest)
		if err != nil {
			return err
		}
		records := len(prefixes) == 1 && prefixes[0][0] == kEvent
		err = s.eventsOf(ctx, m, records, &f, limit, &out)
		if cerr := m.close(); err == nil {
			err = cerr
		}
		return err
	})
	return out, err
}

// eventsOf appends to out the events of the ids m yields that match f,
// until it has limit; records says that m walks the event records
// themselves rather than an index.
func (s *Store) eventsOf(ctx context.Context, m *merge, records bool, f *relay.EventFilter, limit int, out *[]relay.EventSummary) error {
	for c := m.peek(); c != nil && len(*out) < limit; c = m.peek() {
		if err := ctx.Err(); err != nil {
			return err
		}
		id := string(c.id())
		var ev *relay.Event
		var err error
		if records {
			ev, err = decodeEvent(id, c.it.Value(), false)
		} else {
			ev, err = s.loadEvent(id, false)
		}
		if err != nil {
			return err
		}
		m.advance(c)
		if ev == nil || !f.Match(ev) {
			continue
		}
		ds, err := s.deliveriesOf(ev)
		if err != nil {
			return err
		}
		*out = append(*out, relay.EventSummary{Event: ev, Deliveries: ds})
	}
	return nil
}

// loadEvent reads the event id, nil when there is none.
func (s *Store) loadEvent(id string, withPayload bool) (*relay.Event, error) {
	v, closer, err := s.db.Get(eventKey(id))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	ev, err := decodeEvent(id, v, withPayload)
	if err != nil {
		return nil, fmt.Errorf("event %s: %w", id, err)
	}
	return ev, nil
}

func (s *Store) deliveriesOf(ev *relay.Event) ([]relay.Delivery, error) {
	ds := make([]relay.Delivery, 0, len(ev.Targets))
	for _, t := range ev.Targets {
		d, ok, err := s.loadDelivery(relay.DeliveryID(ev.ID, t))
		if err != nil {
			return nil, err
		}
		if ok {
			ds = append(ds, d)
		}
	}
	return ds, nil
}

// Event implements relay.Admin.
func (s *Store) Event(ctx context.Context, id string) (*relay.EventDetail, error) {
	var out *relay.EventDetail
	err := s.view(func() error {
		ev, err := s.loadEvent(id, true)
		if err != nil {
			return err
		}
		if ev == nil {
			return relay.EventNotFound(id)
		}
		if err := s.loadDuplicates(ev); err != nil {
			return err
		}
		ds, err := s.deliveriesOf(ev)
		if err != nil {
			return err
		}
		out = &relay.EventDetail{Event: ev}
		for _, d := range ds {
			dd := relay.DeliveryDetail{Delivery: d}
			if dd.History, err = s.attempts(d.ID()); err != nil {
				return err
			}
			out.Deliveries = append(out.Deliveries, dd)
		}
		return nil
	})
	return out, err
}

// loadDuplicates reads the count of ev's later duplicates into its trail.
func (s *Store) loadDuplicates(ev *relay.Event) error {
	v, closer, err := s.db.Get(dupKey(ev.ID))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	defer closer.Close()
	if len(v) != 16 {
		return fmt.Errorf("duplicates of event %s: %w", ev.ID, errCorrupt)
	}
	ev.Trail.Duplicates = int(binary.LittleEndian.Uint64(v))
	ev.Trail.LastDuplicate = time.Unix(0, int64(binary.LittleEndian.Uint64(v[8:]))).UTC()
	return nil
}

// attempts returns the attempts of delivery id, oldest first.
func (s *Store) attempts(id string) ([]relay.Attempt, error) {
	p := attemptPrefix(id)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var out []relay.Attempt
	for ok := it.First(); ok; ok = it.Next() {
		a, err := decodeAttempt(it.Value())
		if err != nil {
			return nil, fmt.Errorf("attempt %q: %w", it.Key(), err)
		}
		out = append(out, a)
	}
	return out, it.Error()
}

// Deliveries implements relay.Admin. Without a filter it walks the
// delivery records in id order; with one, it merges the indexes of the
// states and targets asked for, each in id order.
func (s *Store) Deliveries(ctx context.Context, f relay.DeliveryFilter) ([]relay.Delivery, error) {
	limit := relay.PageSize(f.Limit)
	var out []relay.Delivery
	err := s.view(func() error {
		if f.State == "" && f.Target == "" {
			p := []byte{kDelivery}
			it, err := s.db.NewIter(bounds(p, f.Before, f.Oldest))
			if err != nil {
				return err
			}
			defer it.Close()
			step := it.Prev
			ok := it.Last()
			if f.Oldest {
				step, ok = it.Next, it.First()
			}
			for ; ok && len(out) < limit; ok = step() {
				var d relay.Delivery
				if err := decodeDelivery(string(it.Key()[1:]), it.Value(), &d); err != nil {
					return fmt.Errorf("delivery %s: %w", it.Key()[1:], err)
				}
				out = append(out, d)
			}
			return it.Error()
		}
		ids, err := s.indexed(f, limit)
		if err != nil {
			return err
		}
		for _, id := range ids {
			d, ok, err := s.loadDelivery(id)
			if err != nil {
				return err
			}
			if ok {
				out = append(out, d)
			}
		}
		return nil
	})
	return out, err
}

// indexed returns up to limit delivery ids that f selects, in its order,
// by merging the indexes of its states and targets.
func (s *Store) indexed(f relay.DeliveryFilter, limit int) ([]string, error) {
	codes := []byte{'p', 'd', 'x'}
	if f.State != "" {
		c, ok := stateCode(f.State)
		if !ok {
			return nil, nil
		}
		codes = []byte{c}
	}
	targets := []string{f.Target}
	if f.Target == "" {
		targets = targets[:0]
		for t := range s.countsNow() {
			targets = append(targets, t)
		}
	}
	var prefixes [][]byte
	for _, code := range codes {
		for _, t := range targets {
			prefixes = append(prefixes, stateIndexPrefix(code, t))
		}
	}
	m, err := s.newMerge(prefixes, func(p []byte) *pebble.IterOptions { return bounds(p, f.Before, f.Oldest) }, f.Oldest)
	if err != nil {
		return nil, err
	}
	var ids []string
	for c := m.peek(); c != nil && len(ids) < limit; c = m.peek() {
		ids = append(ids, string(c.id()))
		m.advance(c)
	}
	return ids, m.close()
}

// Counts implements relay.Admin from the counter keys.
func (s *Store) Counts(ctx context.Context) (map[string]relay.StateCounts, error) {
	var out map[string]relay.StateCounts
	err := s.view(func() error {
		out = s.countsNow()
		return nil
	})
	return out, err
}

// SetPaused implements relay.Admin.
func (s *Store) SetPaused(ctx context.Context, target string, paused bool) error {
	err := s.view(func() error {
		b := s.newBatch()
		if paused {
			b.Set(pausedKey(target), nil, nil)
		} else {
			b.Delete(pausedKey(target), nil)
		}
		return s.commit(b, true)
	})
	if err != nil {
		return fmt.Errorf("pause %s: %w", target, err)
	}
	return nil
}

// Paused implements relay.Admin.
func (s *Store) Paused(ctx context.Context) (map[string]bool, error) {
	out := make(map[string]bool)
	err := s.view(func() error {
		p := []byte{kPaused}
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
		if err != nil {
			return err
		}
		defer it.Close()
		for ok := it.First(); ok; ok = it.Next() {
			out[string(it.Key()[1:])] = true
		}
		return it.Error()
	})
	return out, err
}
