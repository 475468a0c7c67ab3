package pebblestore

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/hooxrelay/hooxrelay/relay"
)

// Counts are kept twice: as counter keys, merged in the same batch as the
// records they count (so that they survive a restart exactly), and in
// memory, a few integers per target, read at open and moved after each
// commit. Reading a counter key would merge every delta written since the
// last compaction, a cost that grows with the ingest rate; Backlog and
// Counts read memory instead.

// counts is one target's deliveries by state.
type counts struct{ pending, delivered, dead atomic.Int64 }

func (c *counts) of(code byte) *atomic.Int64 {
	switch code {
	case 'p':
		return &c.pending
	case 'd':
		return &c.delivered
	}
	return &c.dead
}

// countsOf returns the counts of target, created at zero.
func (s *Store) countsOf(target string) *counts {
	if c, ok := s.counts.Load(target); ok {
		return c.(*counts)
	}
	c, _ := s.counts.LoadOrStore(target, new(counts))
	return c.(*counts)
}

// batch is a pebble batch and the count deltas it carries, applied to the
// counts in memory once it is committed.
type batch struct {
	*pebble.Batch
	deltas []delta
}

type delta struct {
	target string
	code   byte
	n      int64
}

func (s *Store) newBatch() *batch { return &batch{Batch: s.db.NewBatch()} }

func (s *Store) newBatchSize(n int) *batch { return &batch{Batch: s.db.NewBatchWithSize(n)} }

// count adds n to target's count of deliveries in state code. The
// counter keys are merged at the commit (mergeCounts).
func (b *batch) count(target string, code byte, n int64) {
	b.deltas = append(b.deltas, delta{target, code, n})
}

// mergeCounts writes b's deltas into its counter keys, one merge per key:
// a batch of many outcomes of one target moves its counters once.
func (b *batch) mergeCounts() {
	var buf [4]delta
	sums := buf[:0]
next:
	for _, d := range b.deltas {
		for i := range sums {
			if sums[i].target == d.target && sums[i].code == d.code {
				sums[i].n += d.n
				continue next
			}
		}
		sums = append(sums, d)
	}
	for _, d := range sums {
		if d.n == 0 {
			continue
		}
		var v [8]byte
		binary.LittleEndian.PutUint64(v[:], uint64(d.n))
		b.Merge(countKeyOf(d.target, d.code), v[:], nil)
	}
}

// countKeys caches the counter keys by target and state: a batch copies
// the key, and every ingest merges into the same few.
var countKeys sync.Map // delta{target, code, 0} → []byte

func countKeyOf(target string, code byte) []byte {
	dk := delta{target, code, 0}
	if k, ok := countKeys.Load(dk); ok {
		return k.([]byte)
	}
	k, _ := countKeys.LoadOrStore(dk, countKey(target, code))
	return k.([]byte)
}

// applied moves the counts in memory by b's deltas.
func (s *Store) applied(b *batch) {
	for _, d := range b.deltas {
		s.countsOf(d.target).of(d.code).Add(d.n)
	}
}

// loadCounts reads the counter keys into memory, at open.
func (s *Store) loadCounts() error {
	p := []byte{kCount}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p, UpperBound: prefixEnd(p)})
	if err != nil {
		return err
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()[1:]
		n, w := binary.Uvarint(k)
		if w <= 0 || uint64(len(k)-w) != n+1 {
			return fmt.Errorf("corrupt counter key %q", it.Key())
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if len(v) != 8 {
			return fmt.Errorf("corrupt counter %q", it.Key())
		}
		s.countsOf(string(k[w : w+int(n)])).of(k[len(k)-1]).Store(int64(binary.LittleEndian.Uint64(v)))
	}
	return it.Error()
}

// countsNow returns the counts of every target with deliveries.
func (s *Store) countsNow() map[string]relay.StateCounts {
	out := make(map[string]relay.StateCounts)
	s.counts.Range(func(k, v any) bool {
		c := v.(*counts)
		sc := relay.StateCounts{Pending: int(c.pending.Load()), Delivered: int(c.delivered.Load()), Dead: int(c.dead.Load())}
		if sc != (relay.StateCounts{}) {
			out[k.(string)] = sc
		}
		return true
	})
	return out
}

// counterMerger adds the int64 deltas merged into a counter key, and the
// duplicates merged into a dupKey: 16 bytes, a count that adds up and a
// time of which the latest is kept. (Pebble keeps one merger, by name, for
// a store's life: a second name would not open older stores.)
var counterMerger = &pebble.Merger{
	Name: "hooxrelay.counter.v1",
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		c := new(counter)
		return c, c.MergeNewer(value)
	},
}

type counter struct {
	n, last int64
	wide    bool // a dupKey's value
}

func (c *counter) MergeNewer(v []byte) error {
	switch len(v) {
	case 8:
	case 16:
		c.wide = true
		c.last = max(c.last, int64(binary.LittleEndian.Uint64(v[8:])))
	default:
		return errCorrupt
	}
	c.n += int64(binary.LittleEndian.Uint64(v))
	return nil
}

func (c *counter) MergeOlder(v []byte) error { return c.MergeNewer(v) }

func (c *counter) Finish(bool) ([]byte, io.Closer, error) {
	b := binary.LittleEndian.AppendUint64(nil, uint64(c.n))
	if c.wide {
		b = binary.LittleEndian.AppendUint64(b, uint64(c.last))
	}
	return b, nil, nil
}
