package pebblestore_test

import (
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay"
	"github.com/hooxrelay/hooxrelay/relay/pebblestore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// TestConformance runs the relay.Store suite shared with every store.
func TestConformance(t *testing.T) {
	var mu sync.Mutex
	dirs := map[*pebblestore.Store]string{} // where each store lives
	openDir := func(t testing.TB, dir string) relay.Store {
		t.Helper()
		s, err := pebblestore.Open(dir, pebblestore.Options{})
		if err != nil {
			t.Fatalf("Open(%q): %v", dir, err)
		}
		mu.Lock()
		dirs[s] = dir
		mu.Unlock()
		return s
	}
	storetest.Run(t, storetest.Harness{
		Open: func(t testing.TB) relay.Store {
			return openDir(t, filepath.Join(t.TempDir(), "store"))
		},
		Reopen: func(t testing.TB, s relay.Store) relay.Store {
			t.Helper()
			ps := s.(*pebblestore.Store)
			mu.Lock()
			dir, ok := dirs[ps]
			delete(dirs, ps)
			mu.Unlock()
			if !ok {
				t.Fatalf("Reopen of a store that Open did not return")
			}
			if err := ps.Close(); err != nil {
				t.Fatalf("Close before reopening %q: %v", dir, err)
			}
			return openDir(t, dir)
		},
		Outage: func(t testing.TB, s relay.Store) func() {
			ps := s.(*pebblestore.Store)
			pebblestore.SetFault(ps, errors.New("input/output error (the test's failing disk)"))
			return func() { pebblestore.SetFault(ps, nil) }
		},
		Retained: func(t testing.TB) (relay.Store, func()) {
			// The clock stands still until prune moves it past the
			// retention of everything in the store.
			clk := &clock{now: time.Unix(0, 0)}
			s, err := pebblestore.Open(filepath.Join(t.TempDir(), "retained"), pebblestore.Options{Retention: time.Hour, PruneInterval: time.Hour, Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			return s, func() {
				clk.set(time.Now().Add(1000 * time.Hour))
				if _, err := s.Prune(t.Context()); err != nil {
					t.Fatalf("Prune: %v", err)
				}
			}
		},
	})
}

// clock is a settable clock that counts its readers.
type clock struct {
	mu    sync.Mutex
	now   time.Time
	reads int
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.now
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *clock) readCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reads
}
