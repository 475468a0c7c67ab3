package boltstore_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hooxrelay/hooxrelay/relay/boltstore"
	"github.com/hooxrelay/hooxrelay/relay/storetest"
)

// A write that fails for its own input (a key bbolt refuses) fails its
// caller only: the store stays ready, as /readyz reports it.
func TestOneBadWriteKeepsTheStoreReady(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "ready.db"), boltstore.Options{})
	ev := storetest.Event(time.Now(), "k", strings.Repeat("t", 40<<10)) // a delivery key over 32 KiB
	if _, err := s.Ingest(t.Context(), ev, time.Hour); err == nil {
		t.Fatal("Ingest with a 40 KiB delivery key succeeded, want bbolt's refusal")
	}
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping after one write refused for its own key = %v, want nil: the store is fine", err)
	}
}
