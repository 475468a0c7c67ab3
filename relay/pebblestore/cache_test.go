package pebblestore

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// TestBlockCacheKeepsTables checks that table blocks read once are read
// from the cache the next time while full-size memtables exist: pebble
// takes the memtables' size out of the cache's, which once left a cache of
// no room, and every dedup check read its table from the disk.
func TestBlockCacheKeepsTables(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "cache"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	at := time.Now()
	const n = 200
	ingestAll := func(wantDup bool) {
		t.Helper()
		for i := range n {
			res, err := s.Ingest(ctx, storetest.Event(at, fmt.Sprintf("key-%d", i), "a", "b"), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if res.Duplicate != wantDup {
				t.Fatalf("key-%d: duplicate %v, want %v", i, res.Duplicate, wantDup)
			}
		}
	}
	ingestAll(false)
	if err := s.db.Flush(); err != nil {
		t.Fatal(err)
	}
	// Memtables of the full size, as under load (pebble's start small).
	defer s.cache.Reserve(memTableReserve * int(s.opts.MemTableSize))()
	ingestAll(true) // reads the table's blocks into the cache
	before := s.db.Metrics().BlockCache
	ingestAll(true)
	after := s.db.Metrics().BlockCache
	if misses := after.Misses - before.Misses; misses > 0 {
		t.Errorf("a second pass of %d dedup checks over a flushed table missed the block cache %d times (cache holds %d bytes): want 0", n, misses, after.Size)
	}
	if after.Hits == before.Hits {
		t.Errorf("a second pass of %d dedup checks had no block cache hits", n)
	}
}
