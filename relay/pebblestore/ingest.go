package pebblestore

import (
	"context"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hooxrelay/hooxrelay/relay"
)

// Ingest implements relay.Queue: one synced batch. The lock of the dedup
// key is held from the check to the commit, so that of two concurrent
// ingests with one key only one writes; ingests of other keys commit
// alongside, in the same WAL sync.
func (s *Store) Ingest(ctx context.Context, ev *relay.Event, ttl time.Duration) (relay.IngestResult, error) {
	if err := ctx.Err(); err != nil {
		return relay.IngestResult{}, err
	}
	if !s.enter() {
		return relay.IngestResult{}, relay.ErrClosed
	}
	defer s.leave()
	mk := markKey(ev.Source, ev.DedupKey)
	lock := s.markLock(mk)
	lock.Lock()
	defer lock.Unlock()
	if first, closer, err := s.db.Get(mk); err == nil {
		id := string(first)
		closer.Close()
		if t, ok := relay.EventTime(id); ok && ev.ReceivedAt.Sub(t) < ttl {
			// For the first event's trail; not synced, and a duplicate
			// is answered even if this fails: it is a count, not work.
			_ = s.db.Merge(dupKey(id), dupValue(ev.ReceivedAt), pebble.NoSync)
			return relay.IngestResult{EventID: id, Duplicate: true}, nil
		}
	} else if err != pebble.ErrNotFound {
		return relay.IngestResult{}, fmt.Errorf("ingest %s: read dedup mark: %w", ev.ID, err)
	}
	b := s.newBatchSize(eventSize(ev) + 384*len(ev.Targets) + 256)
	buf := make([]byte, 0, eventSize(ev))
	rec := appendEvent(buf, ev)
	b.Set(eventKey(ev.ID), rec, nil)
	b.Set(mk, []byte(ev.ID), nil)
	b.Set(taskStatKey(ev), nil, nil)
	for _, k := range searchKeys(ev) {
		b.Set(k, nil, nil)
	}
	qks := make([][]byte, len(ev.Targets))
	for i, t := range ev.Targets {
		d := relay.NewDelivery(ev, t)
		drec, err := appendDelivery(make([]byte, 0, 96+len(ev.ID)+len(t)), &d)
		if err != nil {
			b.Close()
			return relay.IngestResult{}, err
		}
		id := d.ID()
		b.Set(deliveryKey(id), drec, nil)
		qks[i] = queueKey(t, d.NextAttemptAt, id)
		b.Set(qks[i], drec, nil) // the record again, for the claim
		b.Set(append(stateIndexPrefix('p', t), id...), nil, nil)
		b.count(t, 'p', 1)
	}
	if err := s.commit(b, true); err != nil {
		return relay.IngestResult{}, fmt.Errorf("ingest %s: %w", ev.ID, err)
	}
	for i, t := range ev.Targets {
		s.queue(t).lower(qks[i])
	}
	return relay.IngestResult{EventID: ev.ID}, nil
}
