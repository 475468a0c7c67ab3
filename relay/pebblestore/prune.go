package pebblestore

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hooxrelay/hooxrelay/relay"
)

// pruneChunk bounds the events one pruning batch deletes, and pruneScan
// those it looks at, so that outcomes waiting behind it wait milliseconds.
const (
	pruneChunk = 500
	pruneScan  = 5000
)

func (s *Store) pruneLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.PruneInterval)
	defer t.Stop()
	for {
		if _, err := s.Prune(s.ctx); err != nil && s.ctx.Err() == nil {
			s.log.Error("prune store", "err", err)
		}
		select {
		case <-t.C:
		case <-s.ctx.Done():
			return
		}
	}
}

// SetDedupTTL sets the ttl that pruning keeps dedup marks for, as a reload
// of dedup.ttl does. 0 stops pruning marks.
func (s *Store) SetDedupTTL(ttl time.Duration) { s.dedupTTL.Store(int64(ttl)) }

// Prune deletes expired dedup marks, and events whose deliveries are all
// delivered or dead once they are older than the retention, with their
// deliveries, attempts, index keys and dedup mark. It returns how many
// events it deleted.
func (s *Store) Prune(ctx context.Context) (int, error) {
	now := s.opts.Now()
	if ttl := time.Duration(s.dedupTTL.Load()); ttl > 0 {
		for more := true; more; {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			if err := s.view(func() (err error) {
				more, err = s.pruneMarks(now.Add(-ttl))
				return err
			}); err != nil {
				return 0, err
			}
		}
	}
	if s.opts.Retention <= 0 {
		return 0, s.view(func() error { return nil })
	}
	total := 0
	resume := []byte{kEvent}
	for more := true; more; {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		if err := s.view(func() error {
			n, m, err := s.pruneEvents(now.Add(-s.opts.Retention), &resume)
			total, more = total+n, m
			return err
		}); err != nil {
			return total, err
		}
	}
	return total, nil
}

// lockMarks locks the stripes of the dedup marks ks, in order, and returns
// their unlock.
func (s *Store) lockMarks(ks [][]byte) func() {
	var stripes []int
	for _, k := range ks {
		stripes = append(stripes, s.markStripe(k))
	}
	slices.Sort(stripes)
	stripes = slices.Compact(stripes)
	ls := make([]*sync.Mutex, len(stripes))
	for i, st := range stripes {
		ls[i] = &s.marks[st]
		ls[i].Lock()
	}
	return func() {
		for _, l := range ls {
			l.Unlock()
		}
	}
}

// deleteMarks deletes in b each mark of marks that still names its event.
// Called with the marks' locks held.
func (s *Store) deleteMarks(b *batch, marks map[string]string) error {
	for mk, id := range marks {
		v, err := s.get([]byte(mk))
		if err != nil {
			return err
		}
		if string(v) == id {
			b.Delete([]byte(mk), nil)
		}
	}
	return nil
}

// pruneMarks deletes the dedup marks of up to pruneChunk events received
// before cutoff, from where the previous runs got (metaMarksPruned).
func (s *Store) pruneMarks(cutoff time.Time) (bool, error) {
	from, err := s.get(metaMarksPruned)
	if err != nil {
		return false, err
	}
	o := &pebble.IterOptions{LowerBound: []byte{kEvent}, UpperBound: []byte{kEvent + 1}}
	if from != nil {
		o.LowerBound = append(eventKey(string(from)), 0)
	}
	it, err := s.db.NewIter(o)
	if err != nil {
		return false, err
	}
	marks := map[string]string{}
	var keys [][]byte
	var last string
	more := false
	for ok := it.First(); ok; ok = it.Next() {
		id := string(it.Key()[1:])
		if t, ok := relay.EventTime(id); ok && !t.Before(cutoff) {
			break
		}
		if len(marks) == pruneChunk {
			more = true
			break
		}
		ev, err := decodeEvent(id, it.Value(), false)
		if err != nil {
			it.Close()
			return false, err
		}
		mk := markKey(ev.Source, ev.DedupKey)
		marks[string(mk)] = id
		keys = append(keys, mk)
		last = id
	}
	if err := it.Close(); err != nil {
		return false, err
	}
	if last == "" {
		return false, nil
	}
	unlock := s.lockMarks(keys)
	defer unlock()
	b := s.newBatch()
	if err := s.deleteMarks(b, marks); err != nil {
		b.Close()
		return false, err
	}
	b.Set(metaMarksPruned, []byte(last), nil)
	return more, s.commit(b, false)
}

// pruneEvents deletes up to pruneChunk finished events received before
// cutoff, looking at no more than pruneScan events from *resume on, and
// leaves in *resume where it stopped. Events with pending work are
// skipped.
func (s *Store) pruneEvents(cutoff time.Time, resume *[]byte) (deleted int, more bool, err error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: *resume, UpperBound: []byte{kEvent + 1}})
	if err != nil {
		return 0, false, err
	}
	var doomed []*relay.Event
	scanned := 0
	for ok := it.First(); ok; ok = it.Next() {
		id := string(it.Key()[1:])
		if t, ok := relay.EventTime(id); ok && !t.Before(cutoff) {
			break
		}
		if len(doomed) == pruneChunk || scanned == pruneScan {
			more = true
			*resume = bytes.Clone(it.Key())
			break
		}
		scanned++
		ev, err := decodeEvent(id, it.Value(), false)
		if err != nil {
			it.Close()
			return 0, false, err
		}
		pending := false
		for _, t := range ev.Targets {
			raw, err := s.get(deliveryKey(relay.DeliveryID(ev.ID, t)))
			if err != nil {
				it.Close()
				return 0, false, err
			}
			if st, err := deliveryState(raw); raw != nil && (err != nil || st == relay.Pending) {
				pending = true
				break
			}
		}
		if !pending {
			doomed = append(doomed, ev)
		}
	}
	if err := it.Close(); err != nil {
		return 0, false, err
	}
	if len(doomed) == 0 {
		return 0, more, nil
	}
	marks := map[string]string{}
	var keys [][]byte
	for _, ev := range doomed {
		mk := markKey(ev.Source, ev.DedupKey)
		marks[string(mk)] = ev.ID
		keys = append(keys, mk)
	}
	unlock := s.lockMarks(keys)
	defer unlock()
	b := s.newBatch()
	if err := s.deleteMarks(b, marks); err != nil {
		b.Close()
		return 0, false, err
	}
	for _, ev := range doomed {
		if err := s.deleteEvent(b, ev); err != nil {
			b.Close()
			return 0, false, err
		}
	}
	return len(doomed), more, s.commit(b, false)
}

// deleteEvent writes into b the deletion of a finished event and of what is
// keyed under it: its index keys, its deliveries, their index keys and
// counts, and their attempts (by key range).
func (s *Store) deleteEvent(b *batch, ev *relay.Event) error {
	b.Delete(eventKey(ev.ID), nil)
	if s.oldIndexes {
		b.Delete(taskKey(ev), nil)
		b.Delete(statusKey(ev), nil)
	}
	b.Delete(taskStatKey(ev), nil)
	for _, k := range searchKeys(ev) {
		b.Delete(k, nil)
	}
	b.Delete(dupKey(ev.ID), nil)
	for _, t := range ev.Targets {
		id := relay.DeliveryID(ev.ID, t)
		d, ok, err := s.loadDelivery(id)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		code, _ := stateCode(d.State)
		b.Delete(deliveryKey(id), nil)
		b.Delete(stateIndexKey(code, &d), nil)
		b.count(t, code, -1)
		p := attemptPrefix(id)
		b.DeleteRange(p, prefixEnd(p), nil)
	}
	return nil
}
