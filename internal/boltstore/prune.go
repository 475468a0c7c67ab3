package boltstore

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	bolt "go.etcd.io/bbolt"
)

// pruneChunk bounds the work of one pruning transaction so that ingest
// writes queued behind it wait milliseconds, not seconds.
const pruneChunk = 500

// pruneScan bounds the events one pruning transaction looks at.
const pruneScan = 5000

func (s *Store) pruneLoop() {
	defer s.wg.Done()
	ctx := s.ctx
	t := time.NewTicker(s.opts.PruneInterval)
	defer t.Stop()
	for {
		if _, err := s.Prune(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("prune store", "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// SetDedupTTL sets the ttl that pruning keeps dedup marks for, as a reload
// of dedup.ttl does: a raised ttl keeps every mark not pruned yet for the
// new ttl, a lowered one prunes more at the next run. 0 stops pruning marks.
func (s *Store) SetDedupTTL(ttl time.Duration) { s.dedupTTL.Store(int64(ttl)) }

// Prune deletes expired dedup marks, and events whose deliveries are all
// delivered or dead once they are older than the retention, with their
// deliveries, attempts and dedup mark. It returns how many events it deleted.
func (s *Store) Prune(ctx context.Context) (int, error) {
	if s.isClosed() {
		return 0, relay.ErrClosed
	}
	now := s.opts.Now()
	if ttl := time.Duration(s.dedupTTL.Load()); ttl > 0 {
		if err := s.pruneChunks(ctx, func(tx *bolt.Tx) (bool, error) {
			return pruneMarks(tx, now.Add(-ttl))
		}, nil); err != nil {
			return 0, err
		}
	}
	if s.opts.Retention <= 0 {
		return 0, nil
	}
	total := 0
	var resume []byte // where the previous chunk stopped
	var gone []string // deliveries deleted by the chunk
	err := s.pruneChunks(ctx, func(tx *bolt.Tx) (bool, error) {
		gone = gone[:0]
		n, more, err := pruneEvents(tx, now.Add(-s.opts.Retention), &resume, &gone)
		total += n
		return more, err
	}, func() {
		for _, id := range gone {
			if _, target, ok := relay.SplitDeliveryID(id); ok {
				s.finishedOf(target).remove(id)
			}
		}
	})
	return total, err
}

// pruneChunks runs fn through the committer until it reports no more work;
// after, when set, runs once each chunk is committed, with s.mu held.
func (s *Store) pruneChunks(ctx context.Context, fn func(tx *bolt.Tx) (more bool, err error), after func()) error {
	for ctx.Err() == nil {
		var more bool
		// Once queued, a chunk is committed even if ctx ends (Close drains
		// the queue); waiting for it keeps fn's results ours alone.
		if err := s.submit(context.WithoutCancel(ctx), &write{apply: func(tx *bolt.Tx) (err error) {
			more, err = fn(tx)
			return err
		}, after: after}); err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
	return ctx.Err()
}

// pruneMarks deletes the dedup marks of up to pruneChunk events received
// before cutoff. Events sort by receive time; metaMarksPruned remembers
// how far the previous runs got.
func pruneMarks(tx *bolt.Tx, cutoff time.Time) (bool, error) {
	meta, evs := tx.Bucket(bktMeta), tx.Bucket(bktEvents)
	c := evs.Cursor()
	var k, v []byte
	if from := meta.Get(metaMarksPruned); from != nil {
		k, v = c.Seek(from)
		if bytes.Equal(k, from) {
			k, v = c.Next()
		}
	} else {
		k, v = c.First()
	}
	var last []byte
	n := 0
	more := false
	for ; k != nil; k, v = c.Next() {
		if t, ok := relay.EventTime(string(k)); ok && !t.Before(cutoff) {
			break
		}
		if n == pruneChunk {
			more = true
			break
		}
		if err := deleteMark(tx, k, v); err != nil {
			return false, err
		}
		last = append(last[:0], k...)
		n++
	}
	if last != nil {
		if err := meta.Put(metaMarksPruned, last); err != nil {
			return false, err
		}
	}
	return more, nil
}

// deleteMark deletes the dedup mark of the event id with record rec, if the
// mark is still that event's.
func deleteMark(tx *bolt.Tx, id, rec []byte) error {
	ev, err := decodeEvent(rec, false)
	if err != nil {
		return fmt.Errorf("event %s: %w", id, err)
	}
	dd := tx.Bucket(bktDedup)
	dk := dedupKey(ev.Source, ev.DedupKey)
	if bytes.Equal(dd.Get(dk), id) {
		return dd.Delete(dk)
	}
	return nil
}

// pruneEvents deletes up to pruneChunk finished events received before
// cutoff, looking at no more than pruneScan events from *resume on (the
// start when nil), and leaves in *resume where it stopped. Events still
// pending are skipped, so a large old backlog costs many short
// transactions rather than one long one that ingest would wait for.
func pruneEvents(tx *bolt.Tx, cutoff time.Time, resume *[]byte, gone *[]string) (deleted int, more bool, err error) {
	evs, dels := tx.Bucket(bktEvents), tx.Bucket(bktDeliveries)
	var doomed [][]byte
	c := evs.Cursor()
	k, v := c.First()
	if *resume != nil {
		k, v = c.Seek(*resume)
	}
	for scanned := 0; k != nil; k, v = c.Next() {
		if t, ok := relay.EventTime(string(k)); ok && !t.Before(cutoff) {
			break
		}
		if len(doomed) == pruneChunk || scanned == pruneScan {
			more = true
			*resume = append((*resume)[:0], k...)
			break
		}
		scanned++
		ev, err := decodeEvent(v, false)
		if err != nil {
			return 0, false, err
		}
		pending := false
		for _, t := range ev.Targets {
			if state, _, err := deliveryHead(dels.Get([]byte(relay.DeliveryID(ev.ID, t)))); err == nil && state == relay.Pending {
				pending = true
				break
			}
		}
		if !pending {
			doomed = append(doomed, append([]byte(nil), k...))
		}
	}
	for _, id := range doomed {
		if err := deleteEvent(tx, id, gone); err != nil {
			return 0, false, err
		}
	}
	return len(doomed), more, nil
}

// deleteEvent removes an event and everything keyed under it, its dedup mark
// included: there is never a mark without its event. The ids of the
// deliveries it deletes are appended to gone.
func deleteEvent(tx *bolt.Tx, id []byte, gone *[]string) error {
	if err := deleteMark(tx, id, tx.Bucket(bktEvents).Get(id)); err != nil {
		return err
	}
	prefix := append(append([]byte(nil), id...), ':')
	for _, name := range [][]byte{bktDeliveries, bktAttempts} {
		c := tx.Bucket(name).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
			if bytes.Equal(name, bktDeliveries) {
				*gone = append(*gone, string(k))
			}
			if err := c.Delete(); err != nil {
				return err
			}
		}
	}
	return tx.Bucket(bktEvents).Delete(id)
}
